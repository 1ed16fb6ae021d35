//! Owned records the tracker emits and the store keeps: counted events and
//! finished deliveries. Encoded with postcard (varints), so small values are
//! small on disk.

use crate::clock::Timestamp;
use crate::parse::Notice;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Sent,
    Bounced,
    Expired,
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Bounced => "bounced",
            Outcome::Expired => "expired",
            Outcome::Pending => "pending",
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            Outcome::Sent => 0,
            Outcome::Bounced => 1,
            Outcome::Expired => 2,
            Outcome::Pending => 3,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// Authentication protocol of a failure, as in `auth_failures.by_ip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    Smtp,
    Imap,
    Pop3,
    Other,
}

impl Proto {
    pub(crate) fn index(self) -> usize {
        match self {
            Proto::Smtp => 0,
            Proto::Imap => 1,
            Proto::Pop3 => 2,
            Proto::Other => 3,
        }
    }
}

/// A counted event other than a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Connection,
    Rejected,
    /// A `status=deferred` line, with the recipient's domain.
    Deferral {
        domain: String,
    },
    /// `messages.queued` (+1), or its retraction (-1) when a message turns out
    /// to be the re-injected copy behind a content filter.
    Queued(i8),
    WithDeferral(i8),
    Notification(NoticeKind),
    AuthFailure {
        ip: String,
        proto: Proto,
        count: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    NonDelivery,
    Delay,
    Success,
}

impl NoticeKind {
    pub(crate) fn from_notice(n: Notice) -> Option<Self> {
        match n {
            Notice::NonDelivery => Some(NoticeKind::NonDelivery),
            Notice::Delay => Some(NoticeKind::Delay),
            Notice::Success => Some(NoticeKind::Success),
            Notice::Postmaster => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRec {
    pub time: Timestamp,
    pub kind: EventKind,
}

/// One (message, final recipient) with its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeliveryRec {
    /// The outcome's line; the message's queueing for `pending`.
    pub time: Timestamp,
    /// When the message was queued (or first seen, if that precedes the log).
    pub queue_time: Timestamp,
    /// The whole queue-ID chain, client-facing first.
    pub queue_ids: Vec<String>,
    pub message_id: Option<String>,
    /// `None` if unknown; `Some("")` for the null sender.
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub orig_recipient: Option<String>,
    pub outcome: Option<Outcome>,
    pub direction: Option<Direction>,
    pub relay: Option<String>,
    pub dsn: Option<String>,
    pub response: Option<String>,
    pub attempts: u32,
    pub deferrals: u32,
    pub notification_queue_id: Option<String>,
    pub sasl_user: Option<String>,
    pub client_ip: Option<String>,
}

impl DeliveryRec {
    pub fn outcome(&self) -> Outcome {
        self.outcome.unwrap_or(Outcome::Pending)
    }
    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or(Direction::Outbound)
    }
    /// The recipient's domain, lower-cased (`""` if unknown).
    pub fn recipient_domain(&self) -> String {
        self.recipient.as_deref().and_then(|r| r.rsplit_once('@')).map_or_else(String::new, |(_, x)| x.to_ascii_lowercase())
    }
}
