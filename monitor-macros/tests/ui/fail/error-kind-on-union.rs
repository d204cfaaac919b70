use monitor_core::ErrorKind;

#[derive(ErrorKind)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
