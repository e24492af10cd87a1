-- One completion of a hold, statement for statement as processing/authorization/lifecycle.py
-- executes it on PostgreSQL (tests/loadtests/test_pgbench_scripts.py compares the (verb, table)
-- sequence with what the app really executes).
--
-- It completes this client's oldest authorization not yet completed (authorization.sql counts
-- them in seq, this script in cseq), so every hold is completed once and the unique key of
-- completions never conflicts. When the client has no open hold (its first scripts, or after a
-- run of completions), the script does nothing and pgbench still counts it: the harness takes
-- the authorizations/s from the authorization script's own line of the pgbench report.
-- The card sits in a depot under its company's root unit (loadtests/seed.py): three limit scopes, the
-- root's id read off the unit path in the card's SELECT (see authorization.sql).
-- Deviations from the app, each keeping the cost and the shape: the limit-counter updates name
-- their row by its unique key; JSON documents are constants of a typical size; the outbox event
-- id comes from gen_random_uuid().
-- The constants are E'' strings with every ':' before a letter or digit written \x3a: pgbench
-- reads :name as a variable even inside a string literal.
\if :cseq < :seq
\set cseq :cseq + 1
\set txn (:run * 100000 + :client_id) * 100000000 + :cseq
\set terminal_id :terminal_min + abs(hash(:txn) % (:terminal_max - :terminal_min + 1))
BEGIN;
INSERT INTO terminal_messages (terminal_id, terminal_transaction_id, message_type, request_digest, http_status, response_body, created_at)
VALUES (:terminal_id, :txn, 'complete', 'cdbd8a8274546c7931dcd28f10905ffdf59f8c6ad0fafff07303a3e4979f3b3a', 0, '', now())
ON CONFLICT (terminal_id, terminal_transaction_id, message_type) DO NOTHING RETURNING terminal_messages.id;
SELECT authorizations.id, authorizations.terminal_id, authorizations.terminal_transaction_id, authorizations.station_id, authorizations.company_id, authorizations.card_id, authorizations.driver_id, authorizations.enrollment_id, authorizations.org_unit_id, authorizations.entry_mode, authorizations.product, authorizations.currency, authorizations.requested_amount_minor, authorizations.approved_amount_minor, authorizations.hold_volume_ml, authorizations.unit_price_minor, authorizations.status, authorizations.response_code, authorizations.decided_by, authorizations.decline_reason, authorizations.reason, authorizations.fraud_verdict, authorizations.fraud_trace, authorizations.token_atc, authorizations.clock_skew_seconds, authorizations.counted_on, authorizations.hold_expires_at, authorizations.captured_amount_minor, authorizations.captured_volume_ml, authorizations.created_at, authorizations.closed_at
FROM authorizations
WHERE authorizations.terminal_id = :terminal_id AND authorizations.terminal_transaction_id = :txn FOR UPDATE
\gset auth_
SELECT companies.id, companies.timezone, companies.available_account_id, companies.held_account_id, org_units.path, station_networks.payable_account_id, cards.pan_first6, cards.pan_last4, stations.code, stations.name AS name_1, stations.network_id, terminals.code AS code_1, cards.fraud_state, split_part(org_units.path, '/', 2)::bigint AS root_unit_id
FROM cards JOIN companies ON companies.id = cards.company_id JOIN org_units ON org_units.id = cards.org_unit_id JOIN stations ON stations.id = :auth_station_id JOIN station_networks ON station_networks.id = stations.network_id JOIN terminals ON terminals.id = :terminal_id
WHERE cards.id = :auth_card_id FOR NO KEY UPDATE OF cards
\gset card_
\set captured :auth_approved_amount_minor * random(50, 99) / 100
\set captured_ml :captured * 1000 / :auth_unit_price_minor
\set released :auth_approved_amount_minor - :captured
\set negative_hold -1 * :auth_approved_amount_minor
\set released_ml :auth_hold_volume_ml - :captured_ml
\set negative_released -1 * :released
\set negative_released_ml -1 * :released_ml
UPDATE cards SET fraud_state=E'{"v": 1, "attempts": [1795405958, 1795406558, 1795407758, 1795408958], "fills": [["1201\x3a100000000000001", 1795405958, 38250], ["1201\x3a100000000000002", 1795406558, 41000], ["1201\x3a100000000000003", 1795407758, 45801], ["1201\x3a100000000000004", 1795408958, 45801]], "last": [301, 55.7512, 37.6184, 1795408958], "purchases": 4}'
WHERE cards.id = :auth_card_id;
INSERT INTO journal_entries (kind, company_id, authorization_id, description, created_at)
VALUES ('capture', :auth_company_id, :auth_id, 'sale at terminal T0001201 transaction ' || :txn::text, now()) RETURNING journal_entries.id
\gset entry_
INSERT INTO journal_lines (entry_id, account_id, amount_minor) VALUES (:entry_id, :card_held_account_id, :negative_hold);
INSERT INTO journal_lines (entry_id, account_id, amount_minor) VALUES (:entry_id, :card_available_account_id, :released);
INSERT INTO journal_lines (entry_id, account_id, amount_minor) VALUES (:entry_id, :card_payable_account_id, :captured);
INSERT INTO outbox_events (event_id, event_type, schema_version, company_id, payload, occurred_at)
VALUES (gen_random_uuid()::text, 'authorization.completed', 1, :auth_company_id,
        E'{"operation": "capture", "company_id": 417, "authorization_id": 1834201, "terminal_code": "T0001201", "terminal_transaction_id": "100000000000004", "station_id": 301, "station_code": "ST0301", "station_name": "Station 301", "network_id": 12, "card_id": 20817, "card_last4": "5064", "card_masked": "7005 12\\u2022\\u2022 \\u2022\\u2022\\u2022\\u2022 5064", "driver_id": 20817, "org_unit_id": 417, "product": "diesel", "currency": "RUB", "unit_price_minor": 6550, "amount_minor": 250538, "volume_ml": 38250, "hold_amount_minor": 300000, "released_amount_minor": 49462, "response_code": "00", "journal_entry_id": 3668403}',
        now()) RETURNING outbox_events.id;
INSERT INTO completions (authorization_id, amount_minor, volume_ml, product, unit_price_minor, created_at)
VALUES (:auth_id, :captured, :captured_ml, 'diesel', :auth_unit_price_minor, now()) RETURNING completions.id;
UPDATE authorizations SET status='completed', captured_amount_minor=:captured, captured_volume_ml=:captured_ml, closed_at=now() WHERE authorizations.id = :auth_id;
UPDATE terminal_messages SET http_status=200, response_body=E'{"terminal_transaction_id":"100000000000004","authorization_id"\x3a1834201,"status":"completed","response_code":"00","captured_amount_minor"\x3a250538,"captured_volume_ml"\x3a38250,"released_amount_minor"\x3a49462,"currency":"RUB","product":"diesel"}'
WHERE terminal_messages.terminal_id = :terminal_id AND terminal_messages.terminal_transaction_id = :txn AND terminal_messages.message_type = 'complete';
-- Last, the shared rows: the counters (relative updates, no read), then the three balances.
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'card' AND limit_counters.scope_id = :auth_card_id AND limit_counters.period = 'day' AND limit_counters.period_start = current_date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'card' AND limit_counters.scope_id = :auth_card_id AND limit_counters.period = 'month' AND limit_counters.period_start = date_trunc('month', current_date)::date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'card' AND limit_counters.scope_id = :auth_card_id AND limit_counters.period = 'week' AND limit_counters.period_start = date_trunc('week', current_date)::date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'org_unit' AND limit_counters.scope_id = :card_root_unit_id AND limit_counters.period = 'day' AND limit_counters.period_start = current_date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'org_unit' AND limit_counters.scope_id = :card_root_unit_id AND limit_counters.period = 'month' AND limit_counters.period_start = date_trunc('month', current_date)::date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'org_unit' AND limit_counters.scope_id = :card_root_unit_id AND limit_counters.period = 'week' AND limit_counters.period_start = date_trunc('week', current_date)::date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'org_unit' AND limit_counters.scope_id = :auth_org_unit_id AND limit_counters.period = 'day' AND limit_counters.period_start = current_date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'org_unit' AND limit_counters.scope_id = :auth_org_unit_id AND limit_counters.period = 'month' AND limit_counters.period_start = date_trunc('month', current_date)::date;
UPDATE limit_counters SET amount_minor=CASE WHEN (limit_counters.amount_minor + :negative_released < 0) THEN 0 ELSE limit_counters.amount_minor + :negative_released END, volume_ml=CASE WHEN (limit_counters.volume_ml + :negative_released_ml < 0) THEN 0 ELSE limit_counters.volume_ml + :negative_released_ml END, count=CASE WHEN (limit_counters.count + 0 < 0) THEN 0 ELSE limit_counters.count + 0 END
WHERE limit_counters.scope_kind = 'org_unit' AND limit_counters.scope_id = :auth_org_unit_id AND limit_counters.period = 'week' AND limit_counters.period_start = date_trunc('week', current_date)::date;
UPDATE accounts SET balance_minor=(accounts.balance_minor + :released) WHERE accounts.id = :card_available_account_id;
UPDATE accounts SET balance_minor=(accounts.balance_minor + :negative_hold) WHERE accounts.id = :card_held_account_id;
UPDATE accounts SET balance_minor=(accounts.balance_minor + :captured) WHERE accounts.id = :card_payable_account_id;
COMMIT;
\endif
