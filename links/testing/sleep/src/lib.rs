//! Test fixture: sleeps (blocked in a host call, not burning fuel) for `millis`
//! milliseconds (default one hour), so only the wall-clock deadline can stop it.

use conserver_link_sdk::prelude::*;

/// The sleep fixture.
pub struct Sleep;

impl Link for Sleep {
    fn process(ctx: &Context, _vcon: Vcon) -> LinkResult {
        let millis: u64 = ctx.option_or("millis", 3_600_000)?;
        std::thread::sleep(std::time::Duration::from_millis(millis));
        Ok(Verdict::unchanged())
    }
}

export_link!(Sleep);
