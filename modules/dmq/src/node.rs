//! The DMQ node list: nodes as the notification bodies write them
//! (`sip:host:port[;transport=x];status=s`, one per CRLF line), their
//! status, and the merge of a received list into ours (Kamailio 5.6's
//! rules). No I/O: addresses are resolved by the caller.

use std::net::IpAddr;

/// A node's status (Kamailio 5.6's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Answering.
    Active,
    /// Did not answer once (a second time removes it).
    Disabled,
    /// Parsed and shown; nothing sets it.
    Timeout,
    /// Known but not heard from yet.
    Pending,
}

impl Status {
    /// The word bodies and `dmq.list_nodes` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Timeout => "timeout",
            Status::Pending => "pending",
        }
    }

    /// Parses a `status` parameter (case-insensitive).
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Active,
            Status::Disabled,
            Status::Timeout,
            Status::Pending,
        ]
        .into_iter()
        .find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

/// A node URI as parsed: `sip:host[:port][;transport=x][;status=s]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUri {
    /// The URI as written.
    pub orig: String,
    /// Host as written (brackets kept for IPv6).
    pub host: String,
    /// Port as written (empty when none).
    pub port: String,
    /// `transport`, lower case, when given.
    pub proto: Option<String>,
    /// Whether the URI had parameters at all.
    pub has_params: bool,
    /// `status`, when given (`Err` holds a value that is no status).
    pub status: Option<Result<Status, String>>,
}

impl NodeUri {
    /// Parses a node URI; `Err` says why it is not one.
    pub fn parse(s: &str) -> Result<NodeUri, String> {
        let s = s.trim();
        let u = sr_sdk::sip_msg::Uri::parse(s).map_err(|e| format!("'{s}': {e}"))?;
        if !u.is_sip() || u.host_str.is_empty() {
            return Err(format!("'{s}' is not a SIP URI"));
        }
        let status = u
            .param("status")
            .flatten()
            .map(|v| Status::parse(v).ok_or_else(|| v.to_string()));
        Ok(NodeUri {
            orig: s.to_string(),
            host: u.host_str.to_string(),
            port: u.port.map(|p| p.to_string()).unwrap_or_default(),
            proto: u.transport().map(str::to_ascii_lowercase),
            has_params: !u.params.is_empty(),
            status,
        })
    }

    /// `sip:host[:port][;transport=x]`: where requests to the node go.
    pub fn plain_uri(&self) -> String {
        let mut u = format!("sip:{}", self.host);
        if !self.port.is_empty() {
            u.push(':');
            u.push_str(&self.port);
        }
        if let Some(p) = self.proto.as_deref() {
            u.push_str(";transport=");
            u.push_str(p);
        }
        u
    }

    /// The port to send to (5060 when none is written).
    pub fn port_no(&self) -> u16 {
        self.port.parse().unwrap_or(5060)
    }

    /// `host:port` as the list matches nodes (the port as written).
    pub fn key(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The URI of `channel` on this node: `sip:channel@host:port`, with
    /// the transport when it is not UDP.
    pub fn channel_uri(&self, channel: &str) -> String {
        let mut u = format!("sip:{channel}@{}", self.host);
        if !self.port.is_empty() {
            u.push(':');
            u.push_str(&self.port);
        }
        if let Some(p) = self.proto.as_deref().filter(|p| *p != "udp") {
            u.push_str(";transport=");
            u.push_str(p);
        }
        u
    }
}

/// A node of the list.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its URI.
    pub uri: NodeUri,
    /// Its address.
    pub ip: IpAddr,
    /// Its status.
    pub status: Status,
    /// Whether it is this server.
    pub local: bool,
}

impl Node {
    /// The node's line of a notification body (without the line end).
    pub fn line(&self) -> String {
        let mut l = format!("sip:{}", self.uri.host);
        if !self.uri.port.is_empty() {
            l.push(':');
            l.push_str(&self.uri.port);
        }
        if let Some(p) = self.uri.proto.as_deref() {
            l.push_str(";transport=");
            l.push_str(p);
        }
        l.push_str(";status=");
        l.push_str(self.status.as_str());
        l
    }
}

/// The most nodes a list holds: more lines of a received body are
/// skipped (a body from anyone must not grow it without bound).
pub const MAX_NODES: usize = 256;

/// The node list, newest first, this server last.
#[derive(Debug, Default)]
pub struct NodeList {
    /// The nodes.
    pub nodes: Vec<Node>,
}

/// What a merge did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Nodes added or whose status changed.
    pub changed: usize,
    /// Lines that were not node URIs, with the reason.
    pub bad: Vec<String>,
}

impl NodeList {
    /// The node `host:port` names, if listed.
    pub fn find(&self, key: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.uri.key() == key)
    }

    /// Adds a node in front (the list's order is newest first).
    pub fn add(&mut self, uri: NodeUri, ip: IpAddr, status: Status, local: bool) {
        self.nodes.insert(
            0,
            Node {
                uri,
                ip,
                status,
                local,
            },
        );
    }

    /// The notification body: this server and the active nodes, one line
    /// each, every line ending in CRLF.
    pub fn body(&self) -> String {
        let mut b = String::new();
        for n in self
            .nodes
            .iter()
            .filter(|n| n.local || n.status == Status::Active)
        {
            b.push_str(&n.line());
            b.push_str("\r\n");
        }
        b
    }

    /// Merges a received notification body: unknown nodes are added with
    /// their `status` (pending without one), a known node takes the
    /// status a line gives it unless it is this server or disabled.
    /// `resolve` gives a new node's address (`None`: the line is skipped).
    /// A line whose status is not a status is skipped (Kamailio 5.6 stops
    /// answering and keeps its list locked there).
    pub fn merge(&mut self, body: &str, resolve: impl Fn(&NodeUri) -> Option<IpAddr>) -> Merged {
        let mut m = Merged::default();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let uri = match NodeUri::parse(line) {
                Ok(u) => u,
                Err(e) => {
                    m.bad.push(e);
                    continue;
                }
            };
            let status = match &uri.status {
                Some(Err(v)) => {
                    m.bad
                        .push(format!("'{line}': invalid status parameter: {v}"));
                    continue;
                }
                Some(Ok(s)) => Some(*s),
                None => None,
            };
            match self.find(&uri.key()) {
                None if self.nodes.len() >= MAX_NODES => {
                    m.bad
                        .push(format!("'{line}': the list is full ({MAX_NODES} nodes)"));
                }
                None => {
                    let Some(ip) = resolve(&uri) else {
                        m.bad.push(format!("'{line}': cannot resolve its host"));
                        continue;
                    };
                    self.add(uri, ip, status.unwrap_or(Status::Pending), false);
                    m.changed += 1;
                }
                Some(i) => {
                    let n = &mut self.nodes[i];
                    if let Some(s) = status {
                        if !n.local
                            && uri.has_params
                            && n.status != s
                            && n.status != Status::Disabled
                        {
                            n.status = s;
                            m.changed += 1;
                        }
                    }
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(_: &NodeUri) -> Option<IpAddr> {
        Some("127.0.0.1".parse().unwrap())
    }

    fn list() -> NodeList {
        let mut l = NodeList::default();
        let me = NodeUri::parse("sip:127.0.0.1:5060").unwrap();
        l.add(me, "127.0.0.1".parse().unwrap(), Status::Active, true);
        l
    }

    #[test]
    fn lines_and_bodies() {
        let u = NodeUri::parse("sip:10.0.0.2:5070;transport=TCP").unwrap();
        assert_eq!(u.key(), "10.0.0.2:5070");
        assert_eq!(
            u.channel_uri("usrloc"),
            "sip:usrloc@10.0.0.2:5070;transport=tcp"
        );
        let mut l = list();
        assert_eq!(l.body(), "sip:127.0.0.1:5060;status=active\r\n");
        l.add(u, "10.0.0.2".parse().unwrap(), Status::Pending, false);
        // A pending node is not advertised.
        assert_eq!(l.body(), "sip:127.0.0.1:5060;status=active\r\n");
        l.nodes[0].status = Status::Active;
        assert_eq!(
            l.body(),
            "sip:10.0.0.2:5070;transport=tcp;status=active\r\nsip:127.0.0.1:5060;status=active\r\n"
        );
    }

    #[test]
    fn merging_follows_kamailio_rules() {
        let mut l = list();
        let m = l.merge(
            "sip:127.0.0.1:5070;status=active\r\nsip:127.0.0.1:5080\r\nsip:127.0.0.1:5060;status=disabled\r\n",
            ip,
        );
        assert_eq!(m.changed, 2, "two new nodes; ours is never changed");
        let st = |l: &NodeList, k: &str| l.nodes[l.find(k).unwrap()].status;
        assert_eq!(st(&l, "127.0.0.1:5070"), Status::Active);
        assert_eq!(st(&l, "127.0.0.1:5080"), Status::Pending);
        assert_eq!(st(&l, "127.0.0.1:5060"), Status::Active);
        // Newest first, this server last.
        assert!(l.nodes.last().unwrap().local);
        // A known node's status changes, but not a disabled one's; a line
        // without parameters changes nothing.
        let i = l.find("127.0.0.1:5080").unwrap();
        l.nodes[i].status = Status::Disabled;
        let m = l.merge(
            "sip:127.0.0.1:5070;status=pending\r\nsip:127.0.0.1:5080;status=active\r\nsip:127.0.0.1:5070\r\n",
            ip,
        );
        assert_eq!(m.changed, 1);
        assert_eq!(st(&l, "127.0.0.1:5070"), Status::Pending);
        assert_eq!(st(&l, "127.0.0.1:5080"), Status::Disabled);
        // Bad lines are skipped and said.
        let m = l.merge("sip:127.0.0.1:5090;status=bogus\r\nnot a uri\r\n", ip);
        assert_eq!((m.changed, m.bad.len()), (0, 2));
        assert!(m.bad[0].contains("invalid status parameter: bogus"));
        assert!(l.find("127.0.0.1:5090").is_none());
        // The list stops growing at MAX_NODES.
        let mut big = list();
        let body: String = (0..MAX_NODES + 10)
            .map(|i| format!("sip:10.1.{}.{}:5060;status=active\r\n", i / 250, i % 250))
            .collect();
        let m = big.merge(&body, ip);
        assert_eq!(big.nodes.len(), MAX_NODES);
        assert_eq!((m.changed, m.bad.len()), (MAX_NODES - 1, 11));
        // Unresolvable: skipped.
        let m = l.merge("sip:nowhere.invalid:5060;status=active", |_| None);
        assert_eq!((m.changed, m.bad.len()), (0, 1));
    }
}
