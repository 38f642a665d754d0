//! KDMQ requests as Kamailio's dmq sends them (through tm's `t_request`):
//! `KDMQ sip:<channel>@<node>`, To the same URI, From the channel at our
//! `server_address`, `CSeq: 10 KDMQ`, then `Max-Forwards` (the hop count
//! the node list travels) and `Content-Type`.

use crate::node::NodeUri;
use crate::Dmq;
use sr_sdk::prelude::*;

impl Dmq {
    /// Sends `body` on `channel` to `node` with this Max-Forwards; the
    /// outcome comes back to [`Dmq::ended`] with the node's key.
    pub(crate) fn send(
        &self,
        core: &dyn Core,
        node: &NodeUri,
        channel: &str,
        body: &str,
        content_type: &str,
        max_forwards: u32,
    ) {
        let (Some(tm), Some(me)) = (self.tm.get(), self.me.get()) else {
            return;
        };
        let ruri = node.channel_uri(channel);
        let mut dest = match core.resolve(&ruri, None) {
            Ok(d) => d,
            Err(e) => {
                lm_err!("dmq: cannot send to {ruri}: {e}");
                return;
            }
        };
        if let Some(Some((_, addr))) = self.socket.get() {
            dest.send_socket = Some(*addr);
        }
        let local = sr_mod_tm::local::via_host(core, &dest).unwrap_or_default();
        let host = local.rsplit_once(':').map_or(local.as_str(), |x| x.0);
        let (n, branch) = self.sent.next_branch();
        let key = self.sent.key();
        let from = me.channel_uri(channel);
        let mut text = format!(
            "KDMQ {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {local};branch={branch}\r\nTo: <{ruri}>\r\nFrom: <{from}>;tag={key}-{n}\r\nCSeq: 10 KDMQ\r\nCall-ID: {key}-{n}@{host}\r\nContent-Length: {}\r\n",
            dest.proto.via_name(),
            body.len(),
        );
        if let Some(ua) = core.user_agent_header() {
            text.push_str(&ua);
            text.push_str("\r\n");
        }
        text.push_str(&format!(
            "Max-Forwards: {max_forwards}\r\nContent-Type: {content_type}\r\n\r\n{body}"
        ));
        if let Some(e) = self.sent.start(
            core,
            n,
            text.into_bytes(),
            dest,
            &tm.uac_timers(),
            node.key(),
        ) {
            self.ended(core, e, "");
        }
    }
}
