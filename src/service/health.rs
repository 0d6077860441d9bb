//! Reading the box's health from `/proc` (load, memory) — every value optional, since a
//! development machine or a container may not have them.

/// 1/5/15-minute load averages from `/proc/loadavg`.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// (total, available) memory in MiB from `/proc/meminfo`.
pub fn memory_mb() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// CPU temperature from the first thermal zone (the SoC on a Raspberry Pi), °C.
pub fn thermal_zone_c() -> Option<f64> {
    let text = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    let milli: f64 = text.trim().parse().ok()?;
    Some(milli / 1000.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_values_are_plausible_on_linux() {
        if !std::path::Path::new("/proc/meminfo").exists() {
            return;
        }
        let (total, avail) = super::memory_mb().expect("meminfo");
        assert!(total > 0 && avail <= total);
        let l = super::load_average().expect("loadavg");
        assert!(l.iter().all(|v| *v >= 0.0));
    }
}
