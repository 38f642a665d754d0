//! The request templates of the scenarios, modelled on SIPp's built-in
//! `uac` flow and the reference `register.xml`.
//!
//! Run-constant fields: `[local]` (our host:port), `[local_ip]`,
//! `[remote]` (server host:port), `[remote_ip]`, `[transport]` (`UDP` or
//! `TCP`), `[contact_params]` (`;transport=tcp` on TCP), `[service]`.

use crate::template::Template;

/// INVITE with an SDP offer.
pub const INVITE: &str = "\
INVITE sip:[service]@[remote] SIP/2.0
Via: SIP/2.0/[transport] [local];branch=[branch]
From: sipbench <sip:sipbench@[local]>;tag=[from_tag]
To: [service] <sip:[service]@[remote]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipbench@[local][contact_params]>
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

/// ACK: for a 2xx in the dialog (route set, remote target, to-tag), or
/// hop-by-hop for a failure reply (the INVITE's branch and Request-URI).
pub const ACK: &str = "\
ACK [ruri] SIP/2.0
Via: SIP/2.0/[transport] [local];branch=[branch]
[routes]
From: sipbench <sip:sipbench@[local]>;tag=[from_tag]
To: [service] <sip:[service]@[remote]>[to_tag]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:sipbench@[local][contact_params]>
Max-Forwards: 70
Subject: Performance Test
Content-Length: 0
";

/// BYE in the dialog.
pub const BYE: &str = "\
BYE [ruri] SIP/2.0
Via: SIP/2.0/[transport] [local];branch=[branch]
[routes]
From: sipbench <sip:sipbench@[local]>;tag=[from_tag]
To: [service] <sip:[service]@[remote]>[to_tag]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:sipbench@[local][contact_params]>
Max-Forwards: 70
Subject: Performance Test
Content-Length: 0
";

/// REGISTER for one user (`[auth]` after a challenge).
pub const REGISTER: &str = "\
REGISTER sip:[remote_ip] SIP/2.0
Via: SIP/2.0/[transport] [local];branch=[branch]
From: <sip:[user]@[remote_ip]>;tag=[from_tag]
To: <sip:[user]@[remote_ip]>
Call-ID: [call_id]
CSeq: [cseq] REGISTER
Contact: <sip:[user]@[local][contact_params]>
[auth]
Max-Forwards: 70
Expires: 3600
User-Agent: sipbench
Content-Length: 0
";

/// OPTIONS to the server.
pub const OPTIONS: &str = "\
OPTIONS sip:[service]@[remote] SIP/2.0
Via: SIP/2.0/[transport] [local];branch=[branch]
From: sipbench <sip:sipbench@[local]>;tag=[from_tag]
To: <sip:[service]@[remote]>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
User-Agent: sipbench
Content-Length: 0
";

/// The compiled templates of one run.
#[derive(Debug, Clone)]
pub struct Templates {
    /// [`INVITE`]
    pub invite: Template,
    /// [`ACK`]
    pub ack: Template,
    /// [`BYE`]
    pub bye: Template,
    /// [`REGISTER`]
    pub register: Template,
    /// [`OPTIONS`]
    pub options: Template,
}

impl Templates {
    /// Compiles all templates with the run's constants.
    pub fn new(statics: &[(&str, &str)]) -> Result<Templates, String> {
        Ok(Templates {
            invite: Template::compile(INVITE, statics)?,
            ack: Template::compile(ACK, statics)?,
            bye: Template::compile(BYE, statics)?,
            register: Template::compile(REGISTER, statics)?,
            options: Template::compile(OPTIONS, statics)?,
        })
    }
}
