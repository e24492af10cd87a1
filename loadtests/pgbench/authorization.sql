-- One approved authorization (a pre-authorization hold), statement for statement as
-- processing/authorization/engine.py executes it on PostgreSQL for an ordinary sale: same tables,
-- same WHERE and lock clauses, same columns, same order (tests/loadtests/test_pgbench_scripts.py
-- compares the (verb, table) sequence with what the app really executes).
--
-- Variables from the harness (-D): run (unique per pgbench invocation), seq and cseq (0),
-- terminal_min/terminal_max and enrollment_min/enrollment_max (the seeded id ranges).
-- Kept per client across transactions: seq counts this client's authorizations; completion.sql
-- completes them in order (cseq). terminal_transaction_id = txn, unique per (run, client, seq), so
-- the unique keys of terminal_messages and authorizations never conflict.
--
-- Data layout, as loadtests/seed.py writes it: a card sits in a depot under its company's root unit,
-- so limits count against three scopes (card, root, depot: the app's sorted order, the root being the
-- older unit); the card's SELECT also reads the root's id off the unit path (split_part). Only the
-- card has a limit, so only the card's counters are locked and read; the units' are added to at the
-- end (the shared rows last, with the accounts: docs/loadtests.md, hot accounts).
--
-- Where pgbench cannot do what the app does, the statement keeps its cost and shape:
-- * the card is found by the enrollment's primary key, not by its dpan_hash (one unique index
--   probe either way; pgbench cannot draw a random 32-byte hash);
-- * the token counter update bumps the stored last_atc (the app's "last_atc < :atc" is true for
--   every fresh token; pgbench has no rising counter per enrollment);
-- * the card's three limit-counter updates name their row by its unique key instead of the id
--   the upsert returned (\gset reads one row only);
-- * JSON documents (fraud trace, fraud states, event payload, stored answer) are constants of a
--   typical size;
-- * the outbox event id comes from gen_random_uuid() (the app makes it in Python).
-- The constants are E'' strings with every ':' before a letter or digit written \x3a: pgbench
-- reads :name as a variable even inside a string literal.
\set seq :seq + 1
\set txn (:run * 100000 + :client_id) * 100000000 + :seq
\set terminal_id :terminal_min + abs(hash(:txn) % (:terminal_max - :terminal_min + 1))
\set enrollment_id random(:enrollment_min, :enrollment_max)
\set amount random(100000, 500000)
BEGIN;
INSERT INTO terminal_messages (terminal_id, terminal_transaction_id, message_type, request_digest, http_status, response_body, created_at)
VALUES (:terminal_id, :txn, 'authorize', 'fff8db02fe301295fc0254a85f82b95e14d92adebaa9250c87836d6cf68d8d01', 0, '', now())
ON CONFLICT (terminal_id, terminal_transaction_id, message_type) DO NOTHING RETURNING terminal_messages.id;
SELECT terminals.station_id, terminals.status, stations.status AS status_1, stations.network_id, stations.region, station_products.price_minor, station_products.currency, stations.code, stations.name, stations.latitude, stations.longitude, terminals.fraud_state
FROM terminals JOIN stations ON stations.id = terminals.station_id LEFT OUTER JOIN station_products ON station_products.station_id = stations.id AND station_products.product = 'diesel'
WHERE terminals.id = :terminal_id FOR NO KEY UPDATE OF terminals
\gset term_
SELECT device_enrollments.id, device_enrollments.status, device_enrollments.device_key_encrypted, cards.id AS id_1, cards.driver_id, cards.status AS status_1, cards.pan_first6, cards.pan_last4, companies.id AS id_2, companies.status AS status_2, companies.currency, companies.timezone, companies.available_account_id, companies.held_account_id, cards.org_unit_id, org_units.path, vehicles.tank_capacity_ml, vehicles.allowed_products, cards.created_at, cards.fraud_state, company_fraud_profiles.profile, accounts.balance_minor, accounts.credit_limit_minor, split_part(org_units.path, '/', 2)::bigint AS root_unit_id
FROM device_enrollments JOIN cards ON cards.id = device_enrollments.card_id JOIN companies ON companies.id = cards.company_id JOIN org_units ON org_units.id = cards.org_unit_id LEFT OUTER JOIN vehicles ON vehicles.id = cards.vehicle_id LEFT OUTER JOIN company_fraud_profiles ON company_fraud_profiles.company_id = cards.company_id JOIN accounts ON accounts.id = companies.available_account_id
WHERE device_enrollments.id = :enrollment_id FOR NO KEY UPDATE OF cards
\gset card_
\set volume :amount * 1000 / :term_price_minor
\set negative_amount -1 * :amount
UPDATE device_enrollments SET last_atc=device_enrollments.last_atc + 1, last_clock_skew_seconds=0
WHERE device_enrollments.id = :enrollment_id AND device_enrollments.status = 'active';
SELECT limits.scope_kind, limits.scope_id, limits.metric, limits.period, limits.max_value
FROM limits
WHERE limits.scope_kind = 'card' AND limits.scope_id = :card_id_1 OR limits.scope_kind = 'org_unit' AND limits.scope_id = :card_root_unit_id OR limits.scope_kind = 'org_unit' AND limits.scope_id = :card_org_unit_id;
SELECT spending_controls.scope_kind, spending_controls.scope_id, spending_controls.allowed_products, spending_controls.allowed_station_ids, spending_controls.allowed_network_ids, spending_controls.allowed_regions, spending_controls.allowed_weekdays, spending_controls.allowed_hours
FROM spending_controls
WHERE spending_controls.scope_kind = 'card' AND spending_controls.scope_id = :card_id_1 OR spending_controls.scope_kind = 'org_unit' AND spending_controls.scope_id = :card_root_unit_id OR spending_controls.scope_kind = 'org_unit' AND spending_controls.scope_id = :card_org_unit_id;
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('card', :card_id_1, 'day', current_date, 0, 0, 0), ('card', :card_id_1, 'month', date_trunc('month', current_date)::date, 0, 0, 0), ('card', :card_id_1, 'week', date_trunc('week', current_date)::date, 0, 0, 0)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET scope_kind = excluded.scope_kind
RETURNING limit_counters.id, limit_counters.scope_kind, limit_counters.scope_id, limit_counters.period, limit_counters.period_start, limit_counters.amount_minor, limit_counters.volume_ml, limit_counters.count;
INSERT INTO authorizations (terminal_id, terminal_transaction_id, station_id, company_id, card_id, driver_id, enrollment_id, org_unit_id, entry_mode, product, currency, requested_amount_minor, approved_amount_minor, hold_volume_ml, unit_price_minor, status, response_code, decided_by, reason, fraud_verdict, fraud_trace, token_atc, clock_skew_seconds, counted_on, hold_expires_at, captured_amount_minor, captured_volume_ml, created_at)
VALUES (:terminal_id, :txn, :term_station_id, :card_id_2, :card_id_1, nullif(:card_driver_id, '')::bigint, :enrollment_id, :card_org_unit_id, 'qr', 'diesel', 'RUB', :amount, :amount, :volume, :term_price_minor, 'approved', '00', 'approved', 'approved', 'approve',
        E'{"ruleset": 1041196968, "verdict": "approve", "context": {"amount_minor": 300000, "hold_ml": 45801, "lat": 55.75, "lon": 37.61, "card_age_s": 7793280, "hour_of_week": 7}, "rules": [{"rule": "card_velocity", "rule_id": 1, "version": 1, "outcome": "decline", "fired": false, "inputs": {"count": 3, "max": 4, "window_min": 10}, "detail": "3 authorization attempts of the card in 10 minutes (at most 4 allowed)"}, {"rule": "tank_overfill", "rule_id": 2, "version": 1, "outcome": "review", "fired": false, "inputs": {}, "detail": "the vehicle of the card has no known tank capacity"}, {"rule": "impossible_travel", "rule_id": 3, "version": 1, "outcome": "decline", "fired": false, "inputs": {"km": 0.0}, "detail": "same station as the last authorization of the card"}, {"rule": "unusual_hours", "rule_id": 4, "version": 1, "outcome": "alert", "fired": false, "inputs": {}, "detail": "no activity profile of the company yet"}, {"rule": "decline_run", "rule_id": 5, "version": 1, "outcome": "alert", "fired": false, "inputs": {"declines": 0, "max": 3, "window_min": 60}, "detail": "0 consecutive declines of the card in 60 minutes, below 3"}, {"rule": "new_card_large_purchase", "rule_id": 6, "version": 1, "outcome": "review", "fired": false, "inputs": {"card_age_days": 90.2, "purchases": 4}, "detail": "the card already made an approved purchase"}, {"rule": "enrollment_token_anomalies", "rule_id": 7, "version": 1, "outcome": "block_card", "fired": false, "inputs": {"anomalies": 0, "max": 3, "window_min": 60}, "detail": "no anomaly in this token; 0 token anomalies of this phone in 60 minutes (threshold 3)"}, {"rule": "terminal_token_anomalies", "rule_id": 8, "version": 1, "outcome": "alert", "fired": false, "inputs": {"anomalies": 0, "max": 10, "window_min": 60}, "detail": "no anomaly in this token; 0 token anomalies at this terminal in 60 minutes (threshold 10)"}, {"rule": "terminal_card_burst", "rule_id": 9, "version": 1, "outcome": "alert", "fired": false, "inputs": {"cards": 31, "max": 1000, "window_min": 10}, "detail": "31 different cards at this terminal in 10 minutes (at most 1000 allowed)"}, {"rule": "product_mismatch", "rule_id": 10, "version": 1, "outcome": "alert", "fired": false, "inputs": {}, "detail": "the vehicle of the card declares no fuels"}]}',
        :seq, 0, current_date, now() + interval '30 minutes', 0, 0, now())
RETURNING authorizations.id
\gset auth_
UPDATE cards SET fraud_state=E'{"v": 1, "attempts": [1795405958, 1795406558, 1795407758, 1795408958], "fills": [["1201\x3a100000000000001", 1795405958, 38250], ["1201\x3a100000000000002", 1795406558, 41000], ["1201\x3a100000000000003", 1795407758, 45801], ["1201\x3a100000000000004", 1795408958, 45801]], "last": [301, 55.7512, 37.6184, 1795408958], "purchases": 4}'
WHERE cards.id = :card_id_1;
UPDATE terminals SET fraud_state=E'{"v": 1, "cards": [[10000, 1795408358], [10037, 1795408368], [10074, 1795408378], [10111, 1795408388], [10148, 1795408398], [10185, 1795408408], [10222, 1795408418], [10259, 1795408428], [10296, 1795408438], [10333, 1795408448], [10370, 1795408458], [10407, 1795408468], [10444, 1795408478], [10481, 1795408488], [10518, 1795408498], [10555, 1795408508], [10592, 1795408518], [10629, 1795408528], [10666, 1795408538], [10703, 1795408548], [10740, 1795408558], [10777, 1795408568], [10814, 1795408578], [10851, 1795408588], [10888, 1795408598], [10925, 1795408608], [10962, 1795408618], [10999, 1795408628], [11036, 1795408638], [11073, 1795408648], [11110, 1795408658], [11147, 1795408668], [11184, 1795408678], [11221, 1795408688], [11258, 1795408698], [11295, 1795408708], [11332, 1795408718], [11369, 1795408728], [11406, 1795408738], [11443, 1795408748], [11480, 1795408758], [11517, 1795408768], [11554, 1795408778], [11591, 1795408788], [11628, 1795408798], [11665, 1795408808], [11702, 1795408818], [11739, 1795408828]]}'
WHERE terminals.id = :terminal_id;
INSERT INTO journal_entries (kind, company_id, authorization_id, description, created_at)
VALUES ('hold', :card_id_2, :auth_id, 'hold for terminal T0001201 transaction ' || :txn::text, now()) RETURNING journal_entries.id
\gset entry_
INSERT INTO journal_lines (entry_id, account_id, amount_minor) VALUES (:entry_id, :card_available_account_id, :negative_amount);
INSERT INTO journal_lines (entry_id, account_id, amount_minor) VALUES (:entry_id, :card_held_account_id, :amount);
INSERT INTO outbox_events (event_id, event_type, schema_version, company_id, payload, occurred_at)
VALUES (gen_random_uuid()::text, 'authorization.approved', 1, :card_id_2,
        E'{"operation": "hold", "company_id": 417, "authorization_id": 1834201, "terminal_code": "T0001201", "terminal_transaction_id": "100000000000004", "station_id": 301, "station_code": "ST0301", "station_name": "Station 301", "network_id": 12, "card_id": 20817, "card_last4": "5064", "card_masked": "7005 12\\u2022\\u2022 \\u2022\\u2022\\u2022\\u2022 5064", "driver_id": 20817, "org_unit_id": 417, "product": "diesel", "currency": "RUB", "unit_price_minor": 6550, "requested_amount_minor": 300000, "amount_minor": 300000, "volume_ml": 45801, "partial": false, "response_code": "00", "entry_mode": "qr", "hold_expires_at": "2026-11-23T05\x3a12\x3a38+00\x3a00", "fraud_verdict": "approve", "journal_entry_id": 3668402}',
        now()) RETURNING outbox_events.id;
UPDATE limit_counters SET period_start=current_date, amount_minor=limit_counters.amount_minor + :amount, volume_ml=limit_counters.volume_ml + :volume, count=limit_counters.count + 1
WHERE limit_counters.scope_kind = 'card' AND limit_counters.scope_id = :card_id_1 AND limit_counters.period = 'day';
UPDATE limit_counters SET period_start=date_trunc('month', current_date)::date, amount_minor=limit_counters.amount_minor + :amount, volume_ml=limit_counters.volume_ml + :volume, count=limit_counters.count + 1
WHERE limit_counters.scope_kind = 'card' AND limit_counters.scope_id = :card_id_1 AND limit_counters.period = 'month';
UPDATE limit_counters SET period_start=date_trunc('week', current_date)::date, amount_minor=limit_counters.amount_minor + :amount, volume_ml=limit_counters.volume_ml + :volume, count=limit_counters.count + 1
WHERE limit_counters.scope_kind = 'card' AND limit_counters.scope_id = :card_id_1 AND limit_counters.period = 'week';
UPDATE terminal_messages SET http_status=200, response_body=E'{"terminal_transaction_id":"100000000000004","authorization_id"\x3a1834201,"approved"\x3atrue,"response_code":"00","decline_reason"\x3anull,"reason":"approved","requested_amount_minor"\x3a300000,"approved_amount_minor"\x3a300000,"hold_volume_ml"\x3a45801,"currency":"RUB","product":"diesel","unit_price_minor"\x3a6550,"card":"7005 12•• •••• 5064","hold_expires_at":"2026-11-23T05\x3a12\x3a38Z"}'
WHERE terminal_messages.terminal_id = :terminal_id AND terminal_messages.terminal_transaction_id = :txn AND terminal_messages.message_type = 'authorize';
-- Last, the rows every card of the company shares: the units' counters (added to, not read),
-- then the guarded debit of the available balance and the held credit.
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('org_unit', :card_root_unit_id, 'day', current_date, :amount, :volume, 1)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET period_start = excluded.period_start, amount_minor = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.amount_minor + excluded.amount_minor ELSE excluded.amount_minor END, volume_ml = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.volume_ml + excluded.volume_ml ELSE excluded.volume_ml END, count = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.count + excluded.count ELSE excluded.count END;
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('org_unit', :card_root_unit_id, 'month', date_trunc('month', current_date)::date, :amount, :volume, 1)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET period_start = excluded.period_start, amount_minor = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.amount_minor + excluded.amount_minor ELSE excluded.amount_minor END, volume_ml = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.volume_ml + excluded.volume_ml ELSE excluded.volume_ml END, count = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.count + excluded.count ELSE excluded.count END;
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('org_unit', :card_root_unit_id, 'week', date_trunc('week', current_date)::date, :amount, :volume, 1)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET period_start = excluded.period_start, amount_minor = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.amount_minor + excluded.amount_minor ELSE excluded.amount_minor END, volume_ml = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.volume_ml + excluded.volume_ml ELSE excluded.volume_ml END, count = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.count + excluded.count ELSE excluded.count END;
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('org_unit', :card_org_unit_id, 'day', current_date, :amount, :volume, 1)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET period_start = excluded.period_start, amount_minor = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.amount_minor + excluded.amount_minor ELSE excluded.amount_minor END, volume_ml = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.volume_ml + excluded.volume_ml ELSE excluded.volume_ml END, count = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.count + excluded.count ELSE excluded.count END;
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('org_unit', :card_org_unit_id, 'month', date_trunc('month', current_date)::date, :amount, :volume, 1)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET period_start = excluded.period_start, amount_minor = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.amount_minor + excluded.amount_minor ELSE excluded.amount_minor END, volume_ml = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.volume_ml + excluded.volume_ml ELSE excluded.volume_ml END, count = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.count + excluded.count ELSE excluded.count END;
INSERT INTO limit_counters (scope_kind, scope_id, period, period_start, amount_minor, volume_ml, count)
VALUES ('org_unit', :card_org_unit_id, 'week', date_trunc('week', current_date)::date, :amount, :volume, 1)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET period_start = excluded.period_start, amount_minor = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.amount_minor + excluded.amount_minor ELSE excluded.amount_minor END, volume_ml = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.volume_ml + excluded.volume_ml ELSE excluded.volume_ml END, count = CASE WHEN (limit_counters.period_start = excluded.period_start) THEN limit_counters.count + excluded.count ELSE excluded.count END;
UPDATE accounts SET balance_minor=(accounts.balance_minor - :amount) WHERE accounts.id = :card_available_account_id AND accounts.balance_minor + accounts.credit_limit_minor >= :amount;
UPDATE accounts SET balance_minor=(accounts.balance_minor + :amount) WHERE accounts.id = :card_held_account_id;
COMMIT;
