//! jaq evaluates jq programs recursively: the links workspace's 64 KiB wasm stack
//! traps on non-tail recursion deeper than about 15 levels (a recursive `def`, deep
//! nesting of filters), so this link gets a 1 MiB stack. Linker arguments from a
//! build script come after the workspace's `rustflags`, and the last
//! `-zstack-size` wins.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=1048576");
    }
}
