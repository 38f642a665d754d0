//! The siptrace module's table, as Kamailio's `siptrace-create.sql` makes
//! it: traced messages (`sip_trace`).

use super::schema::{col, ColType, TableDef};

/// Version of `sip_trace`.
pub const SIP_TRACE_VERSION: i64 = 4;

/// `sip_trace`: one row per traced message.
pub fn sip_trace() -> TableDef {
    use ColType::*;
    TableDef {
        name: "sip_trace",
        version: SIP_TRACE_VERSION,
        columns: vec![
            col("id", Id, false, None),
            col("time_stamp", DateTime, false, Some("'2000-01-01 00:00:01'")),
            col("time_us", Int, false, Some("0")),
            col("callid", Varchar(255), false, Some("''")),
            col("traced_user", Varchar(255), false, Some("''")),
            col("msg", Text, false, None),
            col("method", Varchar(50), false, Some("''")),
            col("status", Varchar(255), false, Some("''")),
            col("fromip", Varchar(64), false, Some("''")),
            col("toip", Varchar(64), false, Some("''")),
            col("fromtag", Varchar(128), false, Some("''")),
            col("totag", Varchar(128), false, Some("''")),
            col("direction", Varchar(4), false, Some("''")),
        ],
        unique: vec![],
        indexes: vec![
            ("sip_trace_traced_user_idx", vec!["traced_user"]),
            ("sip_trace_date_idx", vec!["time_stamp"]),
            ("sip_trace_fromip_idx", vec!["fromip"]),
            ("sip_trace_callid_idx", vec!["callid"]),
        ],
    }
}
