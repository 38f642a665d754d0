//! The context a script function runs in.

use crate::core_api::Core;
use crate::msg::SipMsg;
use crate::route::RouteType;

/// What a handler gets: the message, the core services and the kind of
/// route it is called from.
pub struct Ctx<'c> {
    /// The message and what the script changed so far.
    pub msg: &'c mut SipMsg,
    /// The core services.
    pub core: &'c dyn Core,
    /// The route type currently running.
    pub route: RouteType,
}

impl<'c> Ctx<'c> {
    /// A context.
    pub fn new(msg: &'c mut SipMsg, core: &'c dyn Core, route: RouteType) -> Ctx<'c> {
        Ctx { msg, core, route }
    }

    /// Runs `send` (which sends one reply) with `extra` appended to the
    /// message's reply headers for that reply only (see
    /// [`SipMsg::push_reply_headers`]).
    pub fn with_reply_headers<R>(
        &mut self,
        extra: &[&str],
        send: impl FnOnce(&mut Ctx<'c>) -> R,
    ) -> R {
        let saved = self.msg.push_reply_headers(extra);
        let r = send(self);
        self.msg.restore_reply_headers(saved);
        r
    }
}
