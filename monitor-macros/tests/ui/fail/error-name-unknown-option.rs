use monitor_core::ErrorName;

#[derive(Debug, ErrorName)]
enum E {
    #[monitor(kind = "x")]
    A,
    #[monitor(name = "")]
    B,
}

fn main() {}
