use monitor_core::ErrorKind;

#[derive(Debug, ErrorKind)]
enum E {
    #[monitor(label = "x")]
    A,
    #[monitor(kind = "")]
    B,
}

fn main() {}
