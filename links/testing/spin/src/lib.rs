//! Test fixture: loops forever without calling the host. It must be stopped by its
//! fuel budget or its wall-clock deadline.

use conserver_link_sdk::prelude::*;

/// The spin fixture.
pub struct Spin;

impl Link for Spin {
    fn process(_ctx: &Context, _vcon: Vcon) -> LinkResult {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
}

export_link!(Spin);
