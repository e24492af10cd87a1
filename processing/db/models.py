"""Imports every model so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from processing.audit.models import AuditEntry  # noqa: F401
from processing.authorization.models import (  # noqa: F401
    Authorization,
    Completion,
    Reversal,
    TerminalMessage,
)
from processing.cards.models import Card, DeviceEnrollment  # noqa: F401
from processing.contracts.models import CompanyExternalId, Contract  # noqa: F401
from processing.db.base import Base
from processing.identity.models import AuthSession, DriverInvitation, RefreshToken  # noqa: F401
from processing.ledger.models import Account, JournalEntry, JournalLine  # noqa: F401
from processing.limits.models import Limit, LimitCounter, LimitException, SpendingControl  # noqa: F401
from processing.orgs.models import Company, Driver, OrgUnit, User, Vehicle  # noqa: F401
from processing.outbox.delivery_models import RelayLease, WebhookDelivery, WebhookEndpoint  # noqa: F401
from processing.outbox.models import CompanySequence, OutboxEvent  # noqa: F401
from processing.payments.models import (  # noqa: F401
    BankStatement,
    CardPayment,
    CompanyTaxId,
    Invoice,
    StatementLine,
)
from processing.risk.models import (  # noqa: F401
    CompanyFraudProfile,
    FraudAlert,
    FraudCase,
    FraudComment,
    FraudRule,
    FraudRuleVersion,
    FraudWorkerCursor,
)
from processing.service_clients.models import CrmClient, CrmIdempotencyKey  # noqa: F401
from processing.stations.models import Station, StationNetwork, StationProduct, Terminal  # noqa: F401

metadata = Base.metadata
