//! When a record is written, as Kamailio's acc decides: on the final
//! reply of a transaction flagged for accounting (2xx; negative ones
//! only with `failed_transaction_flag`, unless in `failed_filter`;
//! provisional ones with a body when `early_media` is on), a missed call
//! for an INVITE flagged with a missed flag on a negative outcome (once
//! per attempt: the flag is reset after reporting, failure_route may set
//! it again), and at once for `acc_*_request`.

use crate::extra::{self, Extra};
use crate::params::Settings;
use crate::record::{self, Record};
use sr_mod_tm::{TmEvent, TmEventKind};
use sr_sdk::db::DbPool;
use sr_sdk::log;
use sr_sdk::prelude::*;
use std::sync::{Arc, OnceLock};

/// Log text of an accounted transaction.
pub const ANSWERED: &str = "ACC: transaction answered: ";
/// Log text of a missed call.
pub const MISSED: &str = "ACC: call missed: ";
/// Log text of `acc_log_request`.
pub const REQUEST: &str = "ACC: request accounted: ";

/// The accounting state: settings and the database, set at `mod_init`.
#[derive(Debug, Default)]
pub struct Acc {
    /// The checked settings.
    pub settings: OnceLock<Settings>,
    /// The database, when `db_url` is set.
    pub db: OnceLock<Arc<DbPool>>,
}

/// Where a record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Acc,
    Missed,
}

fn has_body(reply: &[u8]) -> bool {
    match Message::parse(reply) {
        Ok(m) => !m.body().is_empty(),
        Err(_) => false,
    }
}

impl Acc {
    fn cfg(&self) -> Option<&Settings> {
        self.settings.get()
    }

    /// The tm callback.
    pub fn on_event(&self, core: &dyn Core, ev: &mut TmEvent<'_>) {
        let Some(s) = self.cfg() else {
            return;
        };
        let flags = ev.req.flags;
        let mask = s.log_flag | s.log_missed | s.failed | s.db_flag | s.db_missed;
        if flags & mask == 0 {
            return;
        }
        let method = ev
            .req
            .msg()
            .cseq()
            .map(|c| c.method.as_str().to_string())
            .unwrap_or_default();
        if method == "CANCEL" && !s.report_cancels {
            return;
        }
        let invite = method == "INVITE";
        let missed_on = flags & (s.log_missed | s.db_missed) != 0;
        if invite && ev.code >= 300 && missed_on {
            self.missed(core, s, ev);
        }
        if ev.kind != TmEventKind::ReplyOut || !self.should_account(s, ev) {
            return;
        }
        let flags = ev.req.flags;
        let to_tag = ev.reply.as_deref().and_then(record::reply_to_tag);
        let r = self.record(s, ev.req, to_tag, ev.code.to_string(), ev.reason.clone());
        let branch = ev.branch_uri.clone();
        if flags & s.log_flag != 0 {
            self.write_log(core, s, ANSWERED, &r, ev.req, branch.as_deref());
        }
        if flags & s.db_flag != 0 {
            self.write_db(core, s, Table::Acc, None, &r, ev.req, branch.as_deref());
        }
    }

    /// Kamailio's `should_acc_reply`.
    fn should_account(&self, s: &Settings, ev: &TmEvent<'_>) -> bool {
        let flags = ev.req.flags;
        if ev.code >= 300 {
            return flags & s.failed != 0 && !s.failed_filter.contains(&ev.code);
        }
        if flags & (s.log_flag | s.db_flag) == 0 {
            return false;
        }
        if ev.code < 200 {
            return s.early_media && ev.reply.as_deref().is_some_and(has_body);
        }
        true
    }

    /// A missed call: written, then the missed flags reset on the
    /// transaction's request.
    fn missed(&self, core: &dyn Core, s: &Settings, ev: &mut TmEvent<'_>) {
        let flags = ev.req.flags;
        let to_tag = ev
            .reply
            .as_deref()
            .and_then(record::reply_to_tag)
            .or_else(|| Some(ev.local_to_tag.to_string()).filter(|t| !t.is_empty()));
        let r = self.record(s, ev.req, to_tag, ev.code.to_string(), ev.reason.clone());
        let branch = ev.branch_uri.clone();
        if flags & s.log_missed != 0 {
            self.write_log(core, s, MISSED, &r, ev.req, branch.as_deref());
        }
        if flags & s.db_missed != 0 {
            self.write_db(core, s, Table::Missed, None, &r, ev.req, branch.as_deref());
        }
        ev.req.flags &= !(s.log_missed | s.db_missed);
    }

    fn record(
        &self,
        s: &Settings,
        req: &SipMsg,
        to_tag: Option<String>,
        code: String,
        reason: String,
    ) -> Record {
        let swap = s.detect_direction && record::is_upstream(req.msg());
        Record::new(req, to_tag, code, reason, swap)
    }

    /// Reads the extras with the Request-URI of the branch the outcome
    /// came from, as Kamailio's acc shows `$ru` of the winning branch.
    fn extras(
        core: &dyn Core,
        req: &mut SipMsg,
        list: &[Extra],
        branch: Option<&str>,
    ) -> Vec<(String, Option<String>)> {
        if list.is_empty() {
            return Vec::new();
        }
        let saved = branch.map(|b| req.new_uri.replace(b.to_string()));
        let vals = extra::values(core, req, list);
        if let Some(old) = saved {
            req.new_uri = old;
        }
        list.iter().map(|e| e.name.clone()).zip(vals).collect()
    }

    fn write_log(
        &self,
        core: &dyn Core,
        s: &Settings,
        text: &str,
        r: &Record,
        req: &mut SipMsg,
        branch: Option<&str>,
    ) {
        if !log::enabled(s.log_level) {
            return;
        }
        let ex = Self::extras(core, req, &s.log_extra, branch);
        let line = r.log_line(text, &ex);
        log::write(s.log_level, "acc", format_args!("{line}"));
    }

    #[allow(clippy::too_many_arguments)]
    fn write_db(
        &self,
        core: &dyn Core,
        s: &Settings,
        table: Table,
        name: Option<&str>,
        r: &Record,
        req: &mut SipMsg,
        branch: Option<&str>,
    ) -> bool {
        let Some(db) = self.db.get() else {
            lm_err!("acc: database accounting asked for, but db_url is not set");
            return false;
        };
        let table = name.unwrap_or(match table {
            Table::Acc => &s.table_acc,
            Table::Missed => &s.table_missed,
        });
        let ex = Self::extras(core, req, &s.db_extra, branch);
        let row = r.row(&s.columns, &ex);
        match db.with(|c| c.insert(table, &row)) {
            Ok(()) => true,
            Err(e) => {
                lm_err!("acc: cannot write to table {table}: {e}");
                false
            }
        }
    }

    /// `acc_log_request(comment)`: a record of the current request, now.
    pub fn log_request(&self, ctx: &mut Ctx<'_>, comment: &str) -> i32 {
        let Some(s) = self.cfg() else {
            return -1;
        };
        let (code, reason) = record::split_comment(comment);
        let r = self.record(s, ctx.msg, None, code, reason);
        self.write_log(ctx.core, s, REQUEST, &r, ctx.msg, None);
        1
    }

    /// `acc_db_request(comment, table)`: a row for the current request in
    /// `table`, now.
    pub fn db_request(&self, ctx: &mut Ctx<'_>, comment: &str, table: &str) -> i32 {
        let Some(s) = self.cfg() else {
            return -1;
        };
        let (code, reason) = record::split_comment(comment);
        let r = self.record(s, ctx.msg, None, code, reason);
        if self.write_db(ctx.core, s, Table::Acc, Some(table), &r, ctx.msg, None) {
            1
        } else {
            -1
        }
    }
}
