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
}
