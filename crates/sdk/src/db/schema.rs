//! Kamailio's table definitions, driver-neutral, with the version numbers
//! Kamailio writes in its `version` table, so that a database made by
//! Kamailio's tools and one made by `siprouter db init` line up.

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// Auto-increment integer primary key (`id`).
    Id,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    BigInt,
    /// Floating point.
    Double,
    /// Text of at most this many characters.
    Varchar(u32),
    /// Long text.
    Text,
    /// Date and time.
    DateTime,
    /// Bytes.
    Blob,
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default value as an SQL literal, if any.
    pub default: Option<&'static str>,
}

/// A table: columns, unique keys and indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    /// Name.
    pub name: &'static str,
    /// Version written in the `version` table.
    pub version: i64,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Unique constraints: (name, columns).
    pub unique: Vec<(&'static str, Vec<&'static str>)>,
    /// Indexes: (name, columns).
    pub indexes: Vec<(&'static str, Vec<&'static str>)>,
}

/// A column (the table files of the modules' schemas build theirs with it).
pub(crate) const fn col(
    name: &'static str,
    ty: ColType,
    nullable: bool,
    default: Option<&'static str>,
) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        nullable,
        default,
    }
}

/// Version of the `version` table itself.
pub const VERSION_VERSION: i64 = 1;
/// Version of `location` (usrloc) in Kamailio 5.x/6.x.
pub const LOCATION_VERSION: i64 = 9;
/// Version of `location_attrs`.
pub const LOCATION_ATTRS_VERSION: i64 = 1;
/// Version of `subscriber` (auth_db).
pub const SUBSCRIBER_VERSION: i64 = 7;
/// Version of `acc` (accounted transactions).
pub const ACC_VERSION: i64 = 5;
/// Version of `missed_calls` (acc).
pub const MISSED_CALLS_VERSION: i64 = 4;

/// `version (table_name, table_version)`.
pub fn version() -> TableDef {
    use ColType::*;
    TableDef {
        name: "version",
        version: VERSION_VERSION,
        columns: vec![
            col("table_name", Varchar(32), false, None),
            col("table_version", Int, false, Some("0")),
        ],
        unique: vec![("version_table_name_idx", vec!["table_name"])],
        indexes: vec![],
    }
}

/// A usrloc table (`location`, or another name given to `save()`).
pub fn location(name: &'static str) -> TableDef {
    use ColType::*;
    TableDef {
        name,
        version: LOCATION_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("ruid", Varchar(64), false, Some("''")),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), true, None),
            col("contact", Varchar(512), false, Some("''")),
            col("received", Varchar(128), true, None),
            col("path", Varchar(512), true, None),
            col("expires", DateTime, false, Some("'2030-05-28 21:32:15'")),
            col("q", Double, false, Some("1.0")),
            col("callid", Varchar(255), false, Some("'Default-Call-ID'")),
            col("cseq", Int, false, Some("1")),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
            col("flags", Int, false, Some("0")),
            col("cflags", Int, false, Some("0")),
            col("user_agent", Varchar(255), false, Some("''")),
            col("socket", Varchar(64), true, None),
            col("methods", Int, true, None),
            col("instance", Varchar(255), true, None),
            col("reg_id", Int, false, Some("0")),
            col("server_id", Int, false, Some("0")),
            col("connection_id", Int, false, Some("0")),
            col("keepalive", Int, false, Some("0")),
            col("partition", Int, false, Some("0")),
        ],
        unique: vec![("ruid_idx", vec!["ruid"])],
        indexes: vec![
            ("account_contact_idx", vec!["username", "domain", "contact"]),
            ("expires_idx", vec!["expires"]),
            ("connection_idx", vec!["server_id", "connection_id"]),
        ],
    }
}

/// `location_attrs` (per-contact attributes; created for compatibility).
pub fn location_attrs() -> TableDef {
    use ColType::*;
    TableDef {
        name: "location_attrs",
        version: LOCATION_ATTRS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("ruid", Varchar(64), false, Some("''")),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), true, None),
            col("aname", Varchar(64), false, Some("''")),
            col("atype", Int, false, Some("0")),
            col("avalue", Varchar(512), false, Some("''")),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
        ],
        unique: vec![],
        indexes: vec![
            ("account_record_idx", vec!["username", "domain", "ruid"]),
            ("last_modified_idx", vec!["last_modified"]),
        ],
    }
}

/// `subscriber` (auth_db credentials).
pub fn subscriber() -> TableDef {
    use ColType::*;
    TableDef {
        name: "subscriber",
        version: SUBSCRIBER_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), false, Some("''")),
            col("password", Varchar(64), false, Some("''")),
            col("ha1", Varchar(128), false, Some("''")),
            col("ha1b", Varchar(128), false, Some("''")),
        ],
        unique: vec![("account_idx", vec!["username", "domain"])],
        indexes: vec![("username_idx", vec!["username"])],
    }
}

/// An acc table: `acc` (version 5) or `missed_calls` (version 4), the
/// same columns with an index on the Call-ID.
pub fn acc_table(name: &'static str, version: i64) -> TableDef {
    use ColType::*;
    TableDef {
        name,
        version,
        columns: vec![
            col("id", Id, false, None),
            col("method", Varchar(16), false, Some("''")),
            col("from_tag", Varchar(64), false, Some("''")),
            col("to_tag", Varchar(64), false, Some("''")),
            col("callid", Varchar(255), false, Some("''")),
            col("sip_code", Varchar(3), false, Some("''")),
            col("sip_reason", Varchar(128), false, Some("''")),
            col("time", DateTime, false, None),
        ],
        unique: vec![],
        indexes: vec![("callid_idx", vec!["callid"])],
    }
}

/// `acc` (the acc module's accounted transactions).
pub fn acc() -> TableDef {
    acc_table("acc", ACC_VERSION)
}

/// `missed_calls` (the acc module's missed calls).
pub fn missed_calls() -> TableDef {
    acc_table("missed_calls", MISSED_CALLS_VERSION)
}

/// Version of `dispatcher`.
pub const DISPATCHER_VERSION: i64 = 4;

/// `dispatcher` (the dispatcher module's destination sets).
pub fn dispatcher() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dispatcher",
        version: DISPATCHER_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("setid", Int, false, Some("0")),
            col("destination", Varchar(192), false, Some("''")),
            col("flags", Int, false, Some("0")),
            col("priority", Int, false, Some("0")),
            col("attrs", Varchar(128), false, Some("''")),
            col("description", Varchar(64), false, Some("''")),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// Version of `address`.
pub const ADDRESS_VERSION: i64 = 6;

/// Version of `trusted`.
pub const TRUSTED_VERSION: i64 = 6;

/// `address` (the permissions module's address groups).
pub fn address() -> TableDef {
    use ColType::*;
    TableDef {
        name: "address",
        version: ADDRESS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("grp", Int, false, Some("1")),
            col("ip_addr", Varchar(50), false, None),
            col("mask", Int, false, Some("32")),
            col("port", Int, false, Some("0")),
            col("tag", Varchar(64), true, None),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// `trusted` (the permissions module's trusted peers).
pub fn trusted() -> TableDef {
    use ColType::*;
    TableDef {
        name: "trusted",
        version: TRUSTED_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("src_ip", Varchar(50), false, None),
            col("proto", Varchar(4), false, None),
            col("from_pattern", Varchar(64), true, None),
            col("ruri_pattern", Varchar(64), true, None),
            col("tag", Varchar(64), true, None),
            col("priority", Int, false, Some("0")),
        ],
        unique: vec![],
        indexes: vec![("trusted_peer_idx", vec!["src_ip"])],
    }
}

/// Version of `domain`.
pub const DOMAIN_VERSION: i64 = 2;

/// Version of `domain_attrs`.
pub const DOMAIN_ATTRS_VERSION: i64 = 1;

/// `domain` (the domain module's domains).
pub fn domain() -> TableDef {
    use ColType::*;
    TableDef {
        name: "domain",
        version: DOMAIN_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("domain", Varchar(64), false, None),
            col("did", Varchar(64), true, None),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
        ],
        unique: vec![("domain_idx", vec!["domain"])],
        indexes: vec![],
    }
}

/// `domain_attrs` (the domain module's attributes per did).
pub fn domain_attrs() -> TableDef {
    use ColType::*;
    TableDef {
        name: "domain_attrs",
        version: DOMAIN_ATTRS_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("did", Varchar(64), false, None),
            col("name", Varchar(32), false, None),
            col("type", Int, false, None),
            col("value", Varchar(255), false, None),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
        ],
        unique: vec![],
        indexes: vec![("domain_attrs_idx", vec!["did", "name"])],
    }
}

/// Version of `dbaliases` (alias_db).
pub const DBALIASES_VERSION: i64 = 1;
/// Version of `grp` (group).
pub const GRP_VERSION: i64 = 2;
/// Version of `re_grp` (group's regular expressions).
pub const RE_GRP_VERSION: i64 = 1;
/// Version of `speed_dial` (speeddial).
pub const SPEED_DIAL_VERSION: i64 = 2;

/// `dbaliases` (alias_db: alias user/domain → user/domain).
pub fn dbaliases() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dbaliases",
        version: DBALIASES_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("alias_username", Varchar(64), false, Some("''")),
            col("alias_domain", Varchar(64), false, Some("''")),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), false, Some("''")),
        ],
        unique: vec![],
        indexes: vec![
            ("dbaliases_alias_user_idx", vec!["alias_username"]),
            (
                "dbaliases_alias_idx",
                vec!["alias_username", "alias_domain"],
            ),
            ("dbaliases_target_idx", vec!["username", "domain"]),
        ],
    }
}

/// `grp` (group: user/domain members of named groups).
pub fn grp() -> TableDef {
    use ColType::*;
    TableDef {
        name: "grp",
        version: GRP_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), false, Some("''")),
            col("grp", Varchar(64), false, Some("''")),
            col(
                "last_modified",
                DateTime,
                false,
                Some("'2000-01-01 00:00:01'"),
            ),
        ],
        unique: vec![("grp_account_group_idx", vec!["username", "domain", "grp"])],
        indexes: vec![],
    }
}

/// `re_grp` (group: regular expressions → group ids).
pub fn re_grp() -> TableDef {
    use ColType::*;
    TableDef {
        name: "re_grp",
        version: RE_GRP_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("reg_exp", Varchar(128), false, Some("''")),
            col("group_id", Int, false, Some("0")),
        ],
        unique: vec![],
        indexes: vec![("re_grp_group_idx", vec!["group_id"])],
    }
}

/// `speed_dial` (speeddial: owner + short number → URI).
pub fn speed_dial() -> TableDef {
    use ColType::*;
    TableDef {
        name: "speed_dial",
        version: SPEED_DIAL_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("username", Varchar(64), false, Some("''")),
            col("domain", Varchar(64), false, Some("''")),
            col("sd_username", Varchar(64), false, Some("''")),
            col("sd_domain", Varchar(64), false, Some("''")),
            col("new_uri", Varchar(255), false, Some("''")),
            col("fname", Varchar(64), false, Some("''")),
            col("lname", Varchar(64), false, Some("''")),
            col("description", Varchar(64), false, Some("''")),
        ],
        unique: vec![(
            "speed_dial_speed_dial_idx",
            vec!["username", "domain", "sd_domain", "sd_username"],
        )],
        indexes: vec![],
    }
}

/// Version of `dialplan` (dialplan's translation rules).
pub const DIALPLAN_VERSION: i64 = 2;

/// `dialplan` (dialplan: match and replacement rules per dialplan id).
pub fn dialplan() -> TableDef {
    use ColType::*;
    TableDef {
        name: "dialplan",
        version: DIALPLAN_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("dpid", Int, false, None),
            col("pr", Int, false, None),
            col("match_op", Int, false, None),
            col("match_exp", Varchar(64), false, None),
            col("match_len", Int, false, Some("0")),
            col("subst_exp", Varchar(64), false, Some("''")),
            col("repl_exp", Varchar(256), false, Some("''")),
            col("attrs", Varchar(64), false, Some("''")),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// Version of `uacreg` (uac's remote registrations).
pub const UACREG_VERSION: i64 = 5;

/// `uacreg` (uac: registrations the proxy makes to remote registrars).
pub fn uacreg() -> TableDef {
    use ColType::*;
    let text = |name, n| col(name, Varchar(n), false, Some("''"));
    TableDef {
        name: "uacreg",
        version: UACREG_VERSION,
        columns: vec![
            col("id", Id, false, None),
            text("l_uuid", 64),
            text("l_username", 64),
            text("l_domain", 64),
            text("r_username", 64),
            text("r_domain", 64),
            text("realm", 64),
            text("auth_username", 64),
            text("auth_password", 64),
            text("auth_ha1", 128),
            text("auth_proxy", 255),
            col("expires", Int, false, Some("0")),
            col("flags", Int, false, Some("0")),
            col("reg_delay", Int, false, Some("0")),
            text("contact_addr", 255),
            text("socket", 128),
        ],
        unique: vec![("uacreg_l_uuid_idx", vec!["l_uuid"])],
        indexes: vec![],
    }
}

/// Version of `htable` (htable's `dbtable`).
pub const HTABLE_VERSION: i64 = 2;

/// `htable` (htable: items of tables loaded from the database).
pub fn htable() -> TableDef {
    use ColType::*;
    TableDef {
        name: "htable",
        version: HTABLE_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("key_name", Varchar(64), false, Some("''")),
            col("key_type", Int, false, Some("0")),
            col("value_type", Int, false, Some("0")),
            col("key_value", Varchar(128), false, Some("''")),
            col("expires", Int, false, Some("0")),
        ],
        unique: vec![],
        indexes: vec![],
    }
}

/// Every table `siprouter db init` creates, `version` first.
pub fn standard() -> Vec<TableDef> {
    vec![
        version(),
        location("location"),
        location_attrs(),
        subscriber(),
        acc(),
        missed_calls(),
        dispatcher(),
        address(),
        trusted(),
        domain(),
        domain_attrs(),
        dbaliases(),
        grp(),
        re_grp(),
        speed_dial(),
        htable(),
        uacreg(),
        dialplan(),
    ]
    .into_iter()
    .chain(super::presence_tables::all())
    .chain([super::avpops_tables::usr_preferences()])
    .chain([super::siptrace_tables::sip_trace()])
    .chain([super::pipelimit_tables::pl_pipes()])
    .chain(super::drouting_tables::all())
    .chain(super::topos_tables::all())
    .chain(super::mtree_tables::all())
    .chain(super::lcr_tables::all())
    .chain([super::pdt_tables::pdt()])
    .chain([super::prefix_route_tables::prefix_route()])
    .chain(super::userblocklist_tables::all())
    .chain([super::msilo_tables::silo()])
    .chain([super::uri_tables::uri()])
    .collect()
}
