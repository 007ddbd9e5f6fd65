//! Who holds an allocation, as host-local writes it in the address's file
//! (`<container>\r\n<ifname>`).

/// The owner of an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub container_id: String,
    pub ifname: String,
}

impl Owner {
    pub fn encode(&self) -> String {
        format!("{}\r\n{}", self.container_id, self.ifname)
    }

    pub fn decode(s: &str) -> Owner {
        let mut lines = s.lines();
        Owner {
            container_id: lines.next().unwrap_or_default().trim().to_string(),
            ifname: lines.next().unwrap_or_default().trim().to_string(),
        }
    }
}
