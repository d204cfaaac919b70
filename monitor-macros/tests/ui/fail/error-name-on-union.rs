use monitor_core::ErrorName;

#[derive(ErrorName)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
