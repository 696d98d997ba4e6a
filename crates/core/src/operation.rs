//! Every operation of the vault, described once: the name it is audited under, what a caller
//! must hold to perform it, and how durable its audit entry is before the caller gets an answer.
//!
//! One entry point (`Vault::execute`, in `vault.rs`) applies these descriptions — it validates,
//! authorizes, resolves the user, runs the work and audits — so no public operation writes its
//! own preamble. Composite operations (export, erasure, the refresher, background jobs) call
//! internal functions over an already resolved user and write only their own entries. The
//! server's route table names one [`Op`] per route and method, which lets a test generated from
//! that table prove every route's authorization.

use crate::Capability;

/// What a caller must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// This capability in the operation's namespace (`admin` implies every capability).
    In(Capability),
    /// `admin` on every namespace.
    Operator,
    /// Any valid token (what it then sees is filtered by its policy).
    AnyToken,
    /// A signed download link is the authority; no token.
    Link,
    /// Recorded by the vault itself (jobs, composite operations, authentication); never an
    /// entry point a caller can reach.
    Internal,
}

/// How durable the audit entry is before the operation's result is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Stored (committed) before the caller gets the result; if it cannot be stored in time,
    /// the result is withheld and the caller gets 503 / 507 (audit fails closed).
    BeforeAnswer,
    /// Queued and stored within the audit writer's flush interval (work nobody waits on:
    /// background jobs, failures found mid-stream, refused authentications).
    Queued,
}

/// Every operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    NamespaceCreate,
    NamespaceList,
    TokenCreate,
    TokenList,
    TokenRevoke,
    TokenSelf,
    TokenSuspensions,
    TokenUnsuspend,
    AuditQuery,
    AuditVerify,
    JobsStatus,
    SysSeal,
    KeysStatus,
    KeysRotate,
    KeysRewrap,
    KeysSetMinVersion,
    KeysRotationPolicyGet,
    KeysRotationPolicySet,
    SecurityPolicyGet,
    SecurityPolicySet,
    UserList,
    UserExport,
    UserErase,
    UserErasureStatus,
    CredentialList,
    CredentialRead,
    CredentialExists,
    CredentialPut,
    CredentialPutBatch,
    CredentialMetadata,
    CredentialDelete,
    CredentialUndelete,
    CredentialDestroy,
    CredentialPurge,
    CredentialPatch,
    CredentialMaxVersions,
    CredentialAccessToken,
    CredentialRevoke,
    CredentialVerify,
    CredentialStatusList,
    ProviderList,
    ProviderPut,
    ProviderDelete,
    CollectionList,
    CollectionPut,
    RecordRead,
    RecordPut,
    RecordDelete,
    RecordList,
    RecordLookup,
    EventAppend,
    EventQuery,
    EventQueryNamespace,
    EventCounts,
    EventRetention,
    FileUploadStart,
    FileUpload,
    FileList,
    FileInfo,
    FileRead,
    FileDelete,
    FileLink,
    FileReadLink,
    FileExport,
    FilePolicyGet,
    FilePolicySet,
    TransitKeyWrite,
    TransitKeyRead,
    TransitKeyList,
    TransitKeyDelete,
    TransitEncrypt,
    TransitDecrypt,
    TransitRewrap,
    TransitDataKey,
    WebhookPut,
    WebhookList,
    WebhookDelete,
    WebhookTest,
    WebhookDeliveries,
    WebhookRedeliver,
    // Recorded by the vault itself.
    Authenticate,
    TokenSuspend,
    AuditReset,
    CredentialRefresh,
    CredentialRevokeOnErase,
    KeysRewrapBatch,
    UserPurge,
    CredentialPutBatchItem,
    UserEraseReplay,
    WebhookDeliver,
    ErasureLedgerShip,
    EventExpire,
    RecordExpire,
    FileSweep,
    KeysScheduledRotation,
    KeysScheduledRetire,
    SysUnseal,
    KeysMoveRoot,
    KeysRotateRoot,
}

/// One operation's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Description {
    /// The audit action (stable: operators query by it).
    pub action: &'static str,
    pub access: Access,
    pub durability: Durability,
}

const fn api(action: &'static str, access: Access) -> Description {
    Description {
        action,
        access,
        durability: Durability::BeforeAnswer,
    }
}

const fn internal(action: &'static str) -> Description {
    Description {
        action,
        access: Access::Internal,
        durability: Durability::Queued,
    }
}

impl Op {
    /// Every operation, for tables and tests.
    pub const ALL: [Op; 99] = {
        use Op::*;
        [
            NamespaceCreate,
            NamespaceList,
            TokenCreate,
            TokenList,
            TokenRevoke,
            TokenSelf,
            TokenSuspensions,
            TokenUnsuspend,
            AuditQuery,
            AuditVerify,
            JobsStatus,
            SysSeal,
            KeysStatus,
            KeysRotate,
            KeysRewrap,
            KeysSetMinVersion,
            KeysRotationPolicyGet,
            KeysRotationPolicySet,
            SecurityPolicyGet,
            SecurityPolicySet,
            UserList,
            UserExport,
            UserErase,
            UserErasureStatus,
            CredentialList,
            CredentialRead,
            CredentialExists,
            CredentialPut,
            CredentialPutBatch,
            CredentialMetadata,
            CredentialDelete,
            CredentialUndelete,
            CredentialDestroy,
            CredentialPurge,
            CredentialPatch,
            CredentialMaxVersions,
            CredentialAccessToken,
            CredentialRevoke,
            CredentialVerify,
            CredentialStatusList,
            ProviderList,
            ProviderPut,
            ProviderDelete,
            CollectionList,
            CollectionPut,
            RecordRead,
            RecordPut,
            RecordDelete,
            RecordList,
            RecordLookup,
            EventAppend,
            EventQuery,
            EventQueryNamespace,
            EventCounts,
            EventRetention,
            FileUploadStart,
            FileUpload,
            FileList,
            FileInfo,
            FileRead,
            FileDelete,
            FileLink,
            FileReadLink,
            FileExport,
            FilePolicyGet,
            FilePolicySet,
            TransitKeyWrite,
            TransitKeyRead,
            TransitKeyList,
            TransitKeyDelete,
            TransitEncrypt,
            TransitDecrypt,
            TransitRewrap,
            TransitDataKey,
            WebhookPut,
            WebhookList,
            WebhookDelete,
            WebhookTest,
            WebhookDeliveries,
            WebhookRedeliver,
            Authenticate,
            TokenSuspend,
            AuditReset,
            CredentialRefresh,
            CredentialRevokeOnErase,
            KeysRewrapBatch,
            UserPurge,
            CredentialPutBatchItem,
            UserEraseReplay,
            WebhookDeliver,
            ErasureLedgerShip,
            EventExpire,
            RecordExpire,
            FileSweep,
            KeysScheduledRotation,
            KeysScheduledRetire,
            SysUnseal,
            KeysMoveRoot,
            KeysRotateRoot,
        ]
    };

    /// The description of this operation: the one place it is written down.
    pub const fn describe(self) -> Description {
        use Capability::{Admin, Delete, Erase, Export, List, Read, Write};
        use Op::*;
        match self {
            NamespaceCreate => api("namespace.create", Access::Operator),
            NamespaceList => api("namespace.list", Access::AnyToken),
            TokenCreate => api("token.create", Access::Operator),
            TokenList => api("token.list", Access::Operator),
            TokenRevoke => api("token.revoke", Access::Operator),
            TokenSelf => api("token.self", Access::AnyToken),
            TokenSuspensions => api("token.suspensions", Access::Operator),
            TokenUnsuspend => api("token.unsuspend", Access::Operator),
            AuditQuery => api("audit.query", Access::Operator),
            AuditVerify => api("audit.verify", Access::Operator),
            JobsStatus => api("jobs.status", Access::Operator),
            SysSeal => api("sys.seal", Access::Operator),
            KeysStatus => api("keys.status", Access::In(Admin)),
            KeysRotate => api("keys.rotate", Access::In(Admin)),
            KeysRewrap => api("keys.rewrap", Access::In(Admin)),
            KeysSetMinVersion => api("keys.set_min_version", Access::In(Admin)),
            KeysRotationPolicyGet => api("keys.rotation_policy.get", Access::In(Admin)),
            KeysRotationPolicySet => api("keys.rotation_policy.set", Access::In(Admin)),
            SecurityPolicyGet => api("security.policy.get", Access::In(Admin)),
            SecurityPolicySet => api("security.policy.set", Access::In(Admin)),
            UserList => api("user.list", Access::In(List)),
            UserExport => api("user.export", Access::In(Export)),
            UserErase => api("user.erase", Access::In(Erase)),
            UserErasureStatus => api("user.erasure_status", Access::In(Erase)),
            CredentialList => api("credential.list", Access::In(List)),
            CredentialRead => api("credential.read", Access::In(Read)),
            CredentialExists => api("credential.exists", Access::In(Read)),
            CredentialPut => api("credential.put", Access::In(Write)),
            CredentialPutBatch => api("credential.put_batch", Access::In(Write)),
            CredentialMetadata => api("credential.metadata", Access::In(Read)),
            CredentialDelete => api("credential.delete", Access::In(Delete)),
            CredentialUndelete => api("credential.undelete", Access::In(Delete)),
            CredentialDestroy => api("credential.destroy", Access::In(Delete)),
            CredentialPurge => api("credential.purge", Access::In(Delete)),
            CredentialPatch => api("credential.patch", Access::In(Write)),
            CredentialMaxVersions => api("credential.max_versions", Access::In(Write)),
            CredentialAccessToken => api("credential.access_token", Access::In(Read)),
            CredentialRevoke => api("credential.revoke", Access::In(Delete)),
            CredentialVerify => api("credential.verify", Access::In(Read)),
            CredentialStatusList => api("credential.status_list", Access::In(List)),
            ProviderList => api("provider.list", Access::In(List)),
            ProviderPut => api("provider.put", Access::In(Admin)),
            ProviderDelete => api("provider.delete", Access::In(Admin)),
            CollectionList => api("collection.list", Access::In(List)),
            CollectionPut => api("collection.put", Access::In(Admin)),
            RecordRead => api("record.read", Access::In(Read)),
            RecordPut => api("record.put", Access::In(Write)),
            RecordDelete => api("record.delete", Access::In(Delete)),
            RecordList => api("record.list", Access::In(List)),
            RecordLookup => api("record.lookup", Access::In(Read)),
            EventAppend => api("event.append", Access::In(Write)),
            EventQuery => api("event.query", Access::In(Read)),
            EventQueryNamespace => api("event.query_namespace", Access::In(List)),
            EventCounts => api("event.counts", Access::In(List)),
            EventRetention => api("event.retention", Access::In(Admin)),
            FileUploadStart => api("file.upload.start", Access::In(Write)),
            FileUpload => api("file.upload", Access::In(Write)),
            FileList => api("file.list", Access::In(List)),
            FileInfo => api("file.info", Access::In(Read)),
            FileRead => api("file.read", Access::In(Read)),
            FileDelete => api("file.delete", Access::In(Delete)),
            FileLink => api("file.link", Access::In(Read)),
            FileReadLink => api("file.read_link", Access::Link),
            FileExport => api("file.export", Access::In(Export)),
            FilePolicyGet => api("file.policy.get", Access::In(List)),
            FilePolicySet => api("file.policy.set", Access::In(Admin)),
            TransitKeyWrite => api("transit.key.write", Access::In(Admin)),
            TransitKeyRead => api("transit.key.read", Access::In(Read)),
            TransitKeyList => api("transit.key.list", Access::In(List)),
            TransitKeyDelete => api("transit.key.delete", Access::In(Admin)),
            TransitEncrypt => api("transit.encrypt", Access::In(Write)),
            TransitDecrypt => api("transit.decrypt", Access::In(Read)),
            TransitRewrap => api("transit.rewrap", Access::In(Write)),
            TransitDataKey => api("transit.datakey", Access::In(Write)),
            WebhookPut => api("webhook.put", Access::In(Admin)),
            WebhookList => api("webhook.list", Access::In(Admin)),
            WebhookDelete => api("webhook.delete", Access::In(Admin)),
            WebhookTest => api("webhook.test", Access::In(Admin)),
            WebhookDeliveries => api("webhook.deliveries", Access::In(Admin)),
            WebhookRedeliver => api("webhook.redeliver", Access::In(Admin)),
            Authenticate => internal("auth"),
            TokenSuspend => internal("token.suspend"),
            AuditReset => internal("audit.reset"),
            CredentialRefresh => internal("credential.refresh"),
            CredentialRevokeOnErase => internal("credential.revoke_on_erase"),
            KeysRewrapBatch => internal("keys.rewrap_batch"),
            UserPurge => internal("user.purge"),
            CredentialPutBatchItem => internal("credential.put_batch_item"),
            UserEraseReplay => internal("user.erase_replay"),
            WebhookDeliver => internal("webhook.deliver"),
            ErasureLedgerShip => internal("erasure.ledger_ship"),
            EventExpire => internal("event.expire"),
            RecordExpire => internal("record.expire"),
            FileSweep => internal("file.sweep"),
            KeysScheduledRotation => internal("keys.rotate_scheduled"),
            KeysScheduledRetire => internal("keys.retire_scheduled"),
            SysUnseal => internal("sys.unseal"),
            KeysMoveRoot => internal("keys.move_root"),
            KeysRotateRoot => internal("keys.rotate_root"),
        }
    }

    pub const fn action(self) -> &'static str {
        self.describe().action
    }

    pub const fn access(self) -> Access {
        self.describe().access
    }

    pub const fn durability(self) -> Durability {
        self.describe().durability
    }

    /// The operation audited under `action`, if any.
    pub fn from_action(action: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.action() == action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_operation_is_listed_once_with_its_own_action() {
        let ops: BTreeSet<Op> = Op::ALL.into_iter().collect();
        assert_eq!(ops.len(), Op::ALL.len(), "an operation is listed twice");
        let actions: BTreeSet<&str> = Op::ALL.iter().map(|op| op.action()).collect();
        assert_eq!(
            actions.len(),
            Op::ALL.len(),
            "two operations share an action"
        );
        for op in Op::ALL {
            assert_eq!(Op::from_action(op.action()), Some(op));
        }
    }

    #[test]
    fn only_internal_records_skip_waiting_for_their_entry() {
        for op in Op::ALL {
            let internal = op.access() == Access::Internal;
            assert_eq!(
                op.durability() == Durability::Queued,
                internal,
                "{op:?}: entries of operations callers reach are durable before the answer"
            );
        }
    }
}
