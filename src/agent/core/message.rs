//! A received heartbeat message, parsed once into what it means: one variant per message
//! kind the agent acts on (docs/protocol.md §4–§5), with its fields already typed, so the
//! handlers match on meaning, never on strings. Unknown kinds are kept by name: a newer peer
//! may send what this agent ignores.

use std::time::Duration;

use crate::agent::membership::NodeStatus;
use crate::agent::resources::Hold;
use crate::agent::wire::Message;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `status`: the sender's state and the deadtime it asks its peers to use.
    Status {
        status: Option<NodeStatus>,
        deadtime: Option<Duration>,
    },
    /// `shutdone`: the sender is leaving, its resources released.
    Shutdone,
    /// `starting`: the sender's resource manager (re)starts.
    Starting,
    /// `resource`: what the sender holds, and whether it is stable.
    Resource {
        hold: Option<Hold>,
        stable: Option<bool>,
        info: Option<String>,
    },
    /// `ask_resources`: one phase of the standby exchange.
    AskResources {
        hold: Option<Hold>,
        info: Option<String>,
    },
    /// `hb_takeover`: the sender wants these groups.
    Takeover { hold: Option<Hold> },
    /// `reqnodes`: the sender asks for the node list.
    ReqNodes,
    /// `NS_rexmit`: resend these sequence numbers (decimal on the wire).
    Rexmit {
        first: Option<u64>,
        last: Option<u64>,
    },
    /// `NS_nak_rexmit`: the sender cannot resend this one (hex on the wire).
    NakRexmit { first: Option<u64> },
    /// `stonith`: a fencing report.
    Stonith {
        node: Option<String>,
        result: Option<String>,
    },
    /// Anything else (`repnodes`, `NS_ackmsg`, kinds of other Heartbeat versions): no action.
    Other(String),
}

impl Kind {
    /// What `message` (type `t`) means.
    pub fn parse(t: &str, message: &Message) -> Kind {
        let hold = || message.get_str("rsc_hold").and_then(Hold::parse);
        let text = |name| message.get_str(name).map(str::to_string);
        match t {
            "status" => Kind::Status {
                status: message.get_str("st").and_then(NodeStatus::from_wire),
                deadtime: message.dt().map(Duration::from_millis),
            },
            "shutdone" => Kind::Shutdone,
            "starting" => Kind::Starting,
            "resource" => Kind::Resource {
                hold: hold(),
                stable: message.get_str("isstable").map(|v| v == "1"),
                info: text("info"),
            },
            "ask_resources" => Kind::AskResources {
                hold: hold(),
                info: text("info"),
            },
            "hb_takeover" => Kind::Takeover { hold: hold() },
            "reqnodes" => Kind::ReqNodes,
            "NS_rexmit" => {
                let decimal = |name| message.get_str(name).and_then(|s| s.parse().ok());
                Kind::Rexmit {
                    first: decimal("firstseq"),
                    last: decimal("lastseq"),
                }
            }
            "NS_nak_rexmit" => Kind::NakRexmit {
                first: message
                    .get_str("firstseq")
                    .and_then(|s| u64::from_str_radix(s, 16).ok()),
            },
            "stonith" => Kind::Stonith {
                node: text("node"),
                result: text("result"),
            },
            other => Kind::Other(other.to_string()),
        }
    }
}

/// Control messages (`NS_*`) carry no sequence number and are never retransmitted.
pub fn is_control(t: &str) -> bool {
    t.starts_with("NS_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(&str, &str)]) -> Message {
        let mut m = Message::new();
        for (k, v) in fields {
            m.push_str(k, v);
        }
        m
    }

    #[test]
    fn fields_are_typed_once() {
        let m = message(&[("t", "status"), ("st", "active"), ("dt", "3e8")]);
        assert_eq!(
            Kind::parse("status", &m),
            Kind::Status {
                status: Some(NodeStatus::Active),
                deadtime: Some(Duration::from_millis(1000)),
            }
        );
        let m = message(&[("t", "resource"), ("rsc_hold", "local"), ("isstable", "1")]);
        assert_eq!(
            Kind::parse("resource", &m),
            Kind::Resource {
                hold: Some(Hold::Local),
                stable: Some(true),
                info: None
            }
        );
        let m = message(&[("firstseq", "10"), ("lastseq", "12")]);
        assert_eq!(
            Kind::parse("NS_rexmit", &m),
            Kind::Rexmit {
                first: Some(10),
                last: Some(12)
            }
        );
        assert_eq!(
            Kind::parse("NS_nak_rexmit", &m),
            Kind::NakRexmit { first: Some(16) }
        );
        assert_eq!(
            Kind::parse("NS_ackmsg", &m),
            Kind::Other("NS_ackmsg".into())
        );
        assert!(is_control("NS_ackmsg") && !is_control("status"));
    }
}
