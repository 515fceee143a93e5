//! Test fixture: panics with a known message, which the host must report as the
//! failure reason (captured from the guest's stderr).

use conserver_link_sdk::prelude::*;

/// The panic fixture.
pub struct Panic;

impl Link for Panic {
    fn process(ctx: &Context, _vcon: Vcon) -> LinkResult {
        let message: String = ctx.option_or("message", "fixture panicked on purpose".to_string())?;
        panic!("{message}");
    }
}

export_link!(Panic);
