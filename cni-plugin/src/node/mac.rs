//! MAC addresses: `[u8; 6]` in the code, one text form on the wire, in
//! files and in messages.

/// `0a:58:0a:f4:01:02` (a pod's `mac`): a unicast MAC, any case.
pub fn parse_mac(s: &str) -> std::result::Result<[u8; 6], String> {
    let bad = || format!("{s:?} is not a MAC address");
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(format!("{s:?} is a multicast address"));
    }
    Ok(mac)
}

/// The one MAC formatter: lower-case hex bytes joined by `:` (also for a
/// DHCP client identifier or a link address of another length).
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::{format_mac, parse_mac};

    #[test]
    fn mac_format_round_trips() {
        let mac = parse_mac("0a:58:0A:f4:01:02").unwrap();
        assert_eq!(format_mac(&mac), "0a:58:0a:f4:01:02");
        assert!(parse_mac("0a:58:0a:f4:01").is_err());
    }
}
