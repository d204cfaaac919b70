use monitor_core::monitored;

#[monitored]
fn total(items: &[u32]) -> u32 {
    let sum: u32 = items.iter().sum();
    sum + "one"
}

#[monitored]
async fn fetch() -> Result<u32, String> {
    let n: u32 = "7";
    Ok(n)
}

fn main() {
    let _ = total(&[1]);
    let _ = fetch();
}
