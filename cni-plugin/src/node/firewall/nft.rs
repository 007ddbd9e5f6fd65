//! nf_tables over netlink: a synchronous socket that reads chains and
//! commits batches, and the handful of expressions lanbridge's rules use.
//! No process starts and no table is re-read whole: a read names its table
//! and chain, and a batch is one atomic commit.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{
    DefaultNla, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NLM_F_APPEND,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions,
    GenMessage, Hook, HookNumber, Immediate, InetHookNumber, ListAttribute, Lookup, Meta, MetaKey,
    NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage, SetAttribute,
    SetElementAttribute, SetElementList, SetElementMessage, SetFlags, SetMessage, TableAttribute,
    TableMessage, Verdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::node::error::{Error, Result};

/// The address families lanbridge's tables live in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    Ip,
    Ip6,
    Bridge,
}

impl Family {
    fn proto(self) -> NetfilterProtoFamily {
        match self {
            Family::Ip => NetfilterProtoFamily::IPv4,
            Family::Ip6 => NetfilterProtoFamily::IPv6,
            Family::Bridge => NetfilterProtoFamily::Bridge,
        }
    }

    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ip,
            IpNet::V6(_) => Family::Ip6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Bridge => "bridge",
        }
    }
}

/// What lanbridge reads back of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub handle: u64,
    /// The comment (`nft … comment`, iptables' `-m comment`).
    pub comment: Option<String>,
    /// The chain a jump or goto of the rule leads to.
    pub target: Option<String>,
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// NFTNL_UDATA_RULE_COMMENT: the TLV nft and iptables-nft keep comments in.
const UDATA_COMMENT: u8 = 0;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// The ifname key type of a set (nft's `TYPE_IFNAME`).
const TYPE_IFNAME: u32 = 41;
/// A map's data type when it maps to verdicts.
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
const IFNAMSIZ: usize = 16;
/// Payload bases: link-layer and network headers.
const BASE_LL: u32 = 0;
const BASE_NETWORK: u32 = 1;

fn failed(what: impl Into<String>, e: std::io::Error) -> Error {
    Error::Firewall {
        what: what.into(),
        source: e,
    }
}

/// One nf_tables change: the message and its netlink flags.
pub struct Change {
    family: Family,
    flags: u16,
    msg: NfTablesMessage,
}

/// Changes committed atomically, in order.
#[derive(Default)]
pub struct Batch {
    changes: Vec<Change>,
    /// What the batch does, for errors and `cleanup --dry-run`.
    pub summary: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn push(&mut self, family: Family, flags: u16, msg: NfTablesMessage, what: String) {
        self.changes.push(Change { family, flags, msg });
        self.summary.push(what);
    }

    /// Creates the table unless it exists.
    pub fn add_table(&mut self, family: Family, table: &str) {
        let msg = NfTablesMessage::NewTable(TableMessage {
            attributes: vec![TableAttribute::Name(table.into())],
        });
        self.push(
            family,
            NLM_F_CREATE,
            msg,
            format!("add table {} {table}", family.name()),
        );
    }

    pub fn delete_table(&mut self, family: Family, table: &str) {
        let msg = NfTablesMessage::DeleteTable(TableMessage {
            attributes: vec![TableAttribute::Name(table.into())],
        });
        self.push(
            family,
            0,
            msg,
            format!("delete table {} {table}", family.name()),
        );
    }

    /// Creates a regular chain unless it exists.
    pub fn add_chain(&mut self, family: Family, table: &str, chain: &str) {
        let msg = NfTablesMessage::NewChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(table.into()),
                ChainAttribute::Name(chain.into()),
            ],
        });
        let what = format!("add chain {} {table} {chain}", family.name());
        self.push(family, NLM_F_CREATE, msg, what);
    }

    /// Creates a base chain unless it exists. No policy is given: a new
    /// chain accepts, and an existing one (iptables' FORWARD under Docker's
    /// DROP) keeps its own.
    pub fn add_base_chain(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        kind: &str,
        hook: InetHookNumber,
        priority: i32,
    ) {
        let msg = NfTablesMessage::NewChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(table.into()),
                ChainAttribute::Name(chain.into()),
                ChainAttribute::Type(kind.into()),
                ChainAttribute::Hook(vec![
                    Hook::Number(HookNumber::Inet(hook)),
                    Hook::Priority(priority as u32),
                ]),
            ],
        });
        let what = format!(
            "add chain {} {table} {chain} {{ type {kind} hook {hook:?} priority {priority} }}",
            family.name()
        );
        self.push(family, NLM_F_CREATE, msg, what);
    }

    pub fn flush_chain(&mut self, family: Family, table: &str, chain: &str) {
        let msg = NfTablesMessage::DeleteRule(RuleMessage {
            attributes: vec![
                RuleAttribute::Table(table.into()),
                RuleAttribute::Chain(chain.into()),
            ],
        });
        let what = format!("flush chain {} {table} {chain}", family.name());
        self.push(family, 0, msg, what);
    }

    pub fn delete_chain(&mut self, family: Family, table: &str, chain: &str) {
        let msg = NfTablesMessage::DeleteChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(table.into()),
                ChainAttribute::Name(chain.into()),
            ],
        });
        let what = format!("delete chain {} {table} {chain}", family.name());
        self.push(family, 0, msg, what);
    }

    /// Appends a rule (`first`: inserts it at the chain's head instead).
    pub fn add_rule(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        rule: Vec<Expressions>,
        comment: &str,
        first: bool,
    ) {
        let what = format!(
            "{} rule {} {table} {chain} {rule:?} comment {comment:?}",
            if first { "insert" } else { "add" },
            family.name(),
        );
        let msg = NfTablesMessage::NewRule(RuleMessage {
            attributes: vec![
                RuleAttribute::Table(table.into()),
                RuleAttribute::Chain(chain.into()),
                RuleAttribute::Expressions(rule.into_iter().map(Into::into).collect()),
                RuleAttribute::UserData(udata_comment(comment)),
            ],
        });
        let flags = NLM_F_CREATE | if first { 0 } else { NLM_F_APPEND };
        self.push(family, flags, msg, what);
    }

    pub fn delete_rule(&mut self, family: Family, table: &str, chain: &str, rule: &Rule) {
        let msg = NfTablesMessage::DeleteRule(RuleMessage {
            attributes: vec![
                RuleAttribute::Table(table.into()),
                RuleAttribute::Chain(chain.into()),
                RuleAttribute::Handle(rule.handle),
            ],
        });
        let what = format!(
            "delete rule {} {table} {chain} handle {} ({})",
            family.name(),
            rule.handle,
            rule.comment.as_deref().unwrap_or_default()
        );
        self.push(family, 0, msg, what);
    }

    /// Creates a verdict map keyed by interface name unless it exists.
    pub fn add_ifname_vmap(&mut self, family: Family, table: &str, map: &str) {
        let msg = NfTablesMessage::NewSet(SetMessage {
            attributes: vec![
                SetAttribute::Table(table.into()),
                SetAttribute::Name(map.into()),
                SetAttribute::Flags(SetFlags::Map),
                SetAttribute::KeyType(TYPE_IFNAME),
                SetAttribute::KeyLen(IFNAMSIZ as u32),
                SetAttribute::DataType(NFT_DATA_VERDICT),
                SetAttribute::DataLen(0),
                SetAttribute::Id(1),
            ],
        });
        let what = format!(
            "add map {} {table} {map} {{ type ifname : verdict }}",
            family.name()
        );
        self.push(family, NLM_F_CREATE, msg, what);
    }

    /// `map[ifname] = jump chain`.
    pub fn add_jump_element(
        &mut self,
        family: Family,
        table: &str,
        map: &str,
        ifname: &str,
        chain: &str,
    ) {
        let element = vec![
            SetElementAttribute::Key(DataAttribute::Value(ifname_key(ifname))),
            SetElementAttribute::Data(jump_to(chain)),
        ];
        let what = format!(
            "add element {} {table} {map} {{ {ifname:?} : jump {chain} }}",
            family.name()
        );
        self.push(
            family,
            NLM_F_CREATE,
            element_message(table, map, element, true),
            what,
        );
    }

    pub fn delete_element(&mut self, family: Family, table: &str, map: &str, ifname: &str) {
        let element = vec![SetElementAttribute::Key(DataAttribute::Value(ifname_key(
            ifname,
        )))];
        let what = format!(
            "delete element {} {table} {map} {{ {ifname:?} }}",
            family.name()
        );
        self.push(family, 0, element_message(table, map, element, false), what);
    }
}

fn element_message(
    table: &str,
    map: &str,
    element: Vec<SetElementAttribute>,
    add: bool,
) -> NfTablesMessage {
    let msg = SetElementMessage {
        attributes: vec![
            SetElementList::Table(table.into()),
            SetElementList::Set(map.into()),
            SetElementList::Elements(vec![ListAttribute::Element(element)]),
        ],
    };
    if add {
        NfTablesMessage::NewSetElement(msg)
    } else {
        NfTablesMessage::DeleteSetElement(msg)
    }
}

fn ifname_key(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.resize(IFNAMSIZ, 0);
    key
}

fn jump_to(chain: &str) -> DataAttribute {
    DataAttribute::Verdict(vec![
        VerdictAttribute::Code(Verdict::Jump),
        VerdictAttribute::Chain(chain.into()),
    ])
}

fn udata_comment(comment: &str) -> Vec<u8> {
    let mut value = comment.as_bytes().to_vec();
    value.push(0);
    let mut tlv = vec![UDATA_COMMENT, value.len() as u8];
    tlv.extend(value);
    tlv
}

fn comment_of(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        if *kind == UDATA_COMMENT {
            let value = &tail[..len];
            let value = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = &tail[len..];
    }
    None
}

/// The expressions rules are made of.
pub mod expr {
    use super::*;

    fn cmp(op: Operator, data: Vec<u8>) -> Expressions {
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(op),
            Cmp::Data(DataAttribute::Value(data)),
        ])
    }

    fn meta(key: MetaKey) -> Expressions {
        Expressions::Meta(vec![
            Meta::Key(key),
            Meta::DestinationRegister(Register::Reg1),
        ])
    }

    fn payload(base: u32, offset: u32, len: u32) -> Expressions {
        Expressions::Payload(vec![
            Payload::DestinationRegister(Register::Reg1),
            Payload::Base(base),
            Payload::Offset(offset),
            Payload::Len(len),
        ])
    }

    /// `iifname NAME`.
    pub fn iifname(name: &str) -> Vec<Expressions> {
        vec![
            meta(MetaKey::Iifname),
            cmp(Operator::Equal, ifname_key(name)),
        ]
    }

    /// `oifname NAME`.
    pub fn oifname(name: &str) -> Vec<Expressions> {
        vec![
            meta(MetaKey::Oifname),
            cmp(Operator::Equal, ifname_key(name)),
        ]
    }

    /// `ip saddr NET` / `ip6 saddr NET` (`daddr`: the destination), in a
    /// table of the network's own family.
    pub fn addr_in(net: &IpNet, source: bool, equal: bool) -> Vec<Expressions> {
        let (offset, len) = match (net, source) {
            (IpNet::V4(_), true) => (12, 4),
            (IpNet::V4(_), false) => (16, 4),
            (IpNet::V6(_), true) => (8, 16),
            (IpNet::V6(_), false) => (24, 16),
        };
        let (addr, mask) = match (net.network(), net.netmask()) {
            (IpAddr::V4(a), IpAddr::V4(m)) => (a.octets().to_vec(), m.octets().to_vec()),
            (IpAddr::V6(a), IpAddr::V6(m)) => (a.octets().to_vec(), m.octets().to_vec()),
            _ => unreachable!("a network and its mask share a family"),
        };
        let mut v = vec![payload(BASE_NETWORK, offset, len)];
        if net.prefix_len() < net.max_prefix_len() {
            v.push(Expressions::Bitwise(vec![
                Bitwise::SourceRegister(Register::Reg1),
                Bitwise::DestinationRegister(Register::Reg1),
                Bitwise::Length(len),
                Bitwise::Mask(DataAttribute::Value(mask)),
                Bitwise::Xor(DataAttribute::Value(vec![0; len as usize])),
            ]));
        }
        let op = if equal {
            Operator::Equal
        } else {
            Operator::NotEqual
        };
        v.push(cmp(op, addr));
        v
    }

    /// `ether saddr != MAC`.
    pub fn ether_saddr_not(mac: &[u8]) -> Vec<Expressions> {
        vec![
            payload(BASE_LL, 6, 6),
            cmp(Operator::NotEqual, mac.to_vec()),
        ]
    }

    /// `iifname vmap @MAP`.
    pub fn iifname_vmap(map: &str) -> Vec<Expressions> {
        vec![
            meta(MetaKey::Iifname),
            Expressions::Lookup(vec![
                Lookup::Set(map.into()),
                Lookup::SourceRegister(Register::Reg1),
                Lookup::DestinationRegister(Register::Verdict),
            ]),
        ]
    }

    fn verdict(code: Verdict, chain: Option<&str>) -> Expressions {
        let mut data = vec![VerdictAttribute::Code(code)];
        data.extend(chain.map(|c| VerdictAttribute::Chain(c.into())));
        Expressions::Immediate(vec![
            Immediate::DestinationRegister(Register::Verdict),
            Immediate::Data(DataAttribute::Verdict(data)),
        ])
    }

    pub fn accept() -> Expressions {
        verdict(Verdict::Other(NF_ACCEPT), None)
    }

    pub fn drop() -> Expressions {
        verdict(Verdict::Other(NF_DROP), None)
    }

    pub fn jump(chain: &str) -> Expressions {
        verdict(Verdict::Jump, Some(chain))
    }

    /// `counter`: what `iptables -L -v` shows of the rule.
    pub fn counter() -> Expressions {
        Expressions::Other {
            expression_type: "counter".into(),
            attributes: vec![],
        }
    }

    pub fn masquerade() -> Expressions {
        Expressions::Other {
            expression_type: "masq".into(),
            attributes: vec![],
        }
    }
}

/// A netlink socket to nf_tables in the calling thread's namespace.
pub struct Nft {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Nft {
    pub fn open() -> Result<Nft> {
        let what = "opening a netlink socket to nf_tables";
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| failed(what, e))?;
        socket.bind_auto().map_err(|e| failed(what, e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| failed(what, e))?;
        Ok(Nft {
            socket,
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    fn send(&mut self, messages: Vec<NetlinkMessage<NetfilterMessage>>) -> std::io::Result<u32> {
        let mut out = Vec::new();
        for mut m in messages {
            self.seq += 1;
            m.header.sequence_number = self.seq;
            m.finalize();
            let start = out.len();
            out.resize(start + m.header.length as usize, 0);
            m.serialize(&mut out[start..]);
        }
        self.socket.send(&out, 0)?;
        Ok(self.seq)
    }

    /// Reads replies up to the one answering `seq` (a dump's end, an error
    /// or an ack), handing each nf_tables message to `each`. The first
    /// error of any earlier message of the exchange is returned.
    fn receive(&mut self, seq: u32, mut each: impl FnMut(NfTablesMessage)) -> std::io::Result<()> {
        let mut first_error = None;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let bytes = &self.buf[offset..n];
                let len = NetlinkBuffer::new_checked(bytes)
                    .map_err(|e| std::io::Error::other(e.to_string()))?
                    .length() as usize;
                let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes[..len])
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                offset += len.next_multiple_of(4);
                let last = msg.header.sequence_number == seq;
                match msg.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        first_error.get_or_insert(e.to_io());
                        if last {
                            return Err(first_error.expect("just set"));
                        }
                    }
                    NetlinkPayload::InnerMessage(NetfilterMessage {
                        inner: NetfilterMessageInner::NfTables(m),
                        ..
                    }) => {
                        each(m);
                        if last && msg.header.flags & netlink_packet_core::NLM_F_MULTIPART == 0 {
                            return first_error.map_or(Ok(()), Err);
                        }
                    }
                    NetlinkPayload::Done(_) | NetlinkPayload::Error(_) if last => {
                        return first_error.map_or(Ok(()), Err);
                    }
                    _ => {}
                }
            }
        }
    }

    fn request(
        family: Family,
        flags: u16,
        msg: NfTablesMessage,
    ) -> NetlinkMessage<NetfilterMessage> {
        let mut m = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(NetfilterMessage::new(
                NetfilterHeader::new(family.proto(), 0, 0),
                msg,
            )),
        );
        m.header.flags = NLM_F_REQUEST | flags;
        m
    }

    /// The rules of `chain`, in order; none when the table or chain is missing.
    pub fn rules(&mut self, family: Family, table: &str, chain: &str) -> Result<Vec<Rule>> {
        let what = format!("list chain {} {table} {chain}", family.name());
        let msg = NfTablesMessage::GetRule(RuleMessage {
            attributes: vec![
                RuleAttribute::Table(table.into()),
                RuleAttribute::Chain(chain.into()),
            ],
        });
        let seq = self
            .send(vec![Self::request(family, NLM_F_DUMP, msg)])
            .map_err(|e| failed(&what, e))?;
        let mut rules = Vec::new();
        let got = self.receive(seq, |m| {
            if let NfTablesMessage::NewRule(r) = m {
                rules.push(rule_of(r));
            }
        });
        match got {
            Ok(()) => Ok(rules),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(failed(what, e)),
        }
    }

    pub fn chain_exists(&mut self, family: Family, table: &str, chain: &str) -> Result<bool> {
        let what = format!("get chain {} {table} {chain}", family.name());
        let msg = NfTablesMessage::GetChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(table.into()),
                ChainAttribute::Name(chain.into()),
            ],
        });
        let seq = self
            .send(vec![Self::request(family, 0, msg)])
            .map_err(|e| failed(&what, e))?;
        match self.receive(seq, drop) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(failed(what, e)),
        }
    }

    /// How many elements the set or map holds (0 when it is missing).
    pub fn element_count(&mut self, family: Family, table: &str, set: &str) -> Result<usize> {
        let what = format!("list set {} {table} {set}", family.name());
        let msg = NfTablesMessage::GetSetElement(SetElementMessage {
            attributes: vec![
                SetElementList::Table(table.into()),
                SetElementList::Set(set.into()),
            ],
        });
        let seq = self
            .send(vec![Self::request(family, NLM_F_DUMP, msg)])
            .map_err(|e| failed(&what, e))?;
        let mut count = 0;
        let got = self.receive(seq, |m| {
            if let NfTablesMessage::NewSetElement(s) = m {
                for a in s.attributes {
                    if let SetElementList::Elements(list) = a {
                        count += list.len();
                    }
                }
            }
        });
        match got {
            Ok(()) => Ok(count),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(0),
            Err(e) => Err(failed(what, e)),
        }
    }

    /// Commits `batch` atomically (nothing to do when empty). Errors are
    /// all a batch's messages answer without an ack: a generation request
    /// after it fences the answers.
    pub fn commit(&mut self, batch: &Batch) -> std::result::Result<(), (std::io::Error, String)> {
        if batch.is_empty() {
            return Ok(());
        }
        let control = |c| {
            let mut m = NetlinkMessage::from(NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
                c,
            ));
            m.header.flags = NLM_F_REQUEST;
            m
        };
        let mut messages = vec![control(ControlMessage::BatchBegin)];
        for c in &batch.changes {
            messages.push(Self::request(c.family, c.flags, c.msg.clone()));
        }
        messages.push(control(ControlMessage::BatchEnd));
        let sent = self
            .send(messages)
            .map_err(|e| (e, batch.summary.join("; ")))?;
        let fence = NfTablesMessage::GetGen(GenMessage { attributes: vec![] });
        let seq = self
            .send(vec![Self::request(Family::Ip, 0, fence)])
            .map_err(|e| (e, batch.summary.join("; ")))?;
        debug_assert_eq!(sent + 1, seq);
        self.receive(seq, drop)
            .map_err(|e| (e, batch.summary.join("; ")))
    }
}

const NFTA_MATCH_NAME: u16 = 1;
const NFTA_MATCH_INFO: u16 = 3;

fn nla_value(nla: &DefaultNla) -> Vec<u8> {
    let mut v = vec![0; nla.value_len()];
    nla.emit_value(&mut v);
    v
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The comment of an iptables-nft `-m comment` match expression.
fn xt_comment(kind: &str, attributes: &[DefaultNla]) -> Option<String> {
    let find = |k| attributes.iter().find(|a| a.kind() == k).map(nla_value);
    if kind != "match" || c_string(&find(NFTA_MATCH_NAME)?) != "comment" {
        return None;
    }
    Some(c_string(&find(NFTA_MATCH_INFO)?))
}

fn rule_of(r: RuleMessage) -> Rule {
    let mut rule = Rule {
        handle: 0,
        comment: None,
        target: None,
    };
    for a in r.attributes {
        match a {
            RuleAttribute::Handle(h) => rule.handle = h,
            RuleAttribute::UserData(u) => rule.comment = comment_of(&u),
            RuleAttribute::Expressions(list) => {
                for e in list {
                    let ListAttribute::Element(attrs) = e else {
                        continue;
                    };
                    for a in attrs {
                        if let ExpressionAttribute::Data(Expressions::Other {
                            expression_type,
                            attributes,
                        }) = &a
                        {
                            // iptables' `-m comment`: an xt match.
                            if let Some(c) = xt_comment(expression_type, attributes) {
                                rule.comment = Some(c);
                            }
                        }
                        if let ExpressionAttribute::Data(Expressions::Immediate(imm)) = a {
                            for i in imm {
                                if let Immediate::Data(DataAttribute::Verdict(v)) = i {
                                    let jumps = v.iter().any(|v| {
                                        matches!(
                                            v,
                                            VerdictAttribute::Code(Verdict::Jump | Verdict::Goto)
                                        )
                                    });
                                    for v in v {
                                        if let (true, VerdictAttribute::Chain(c)) = (jumps, v) {
                                            rule.target = Some(c);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp_data(e: &Expressions) -> Vec<u8> {
        match e {
            Expressions::Cmp(attrs) => attrs
                .iter()
                .find_map(|a| match a {
                    Cmp::Data(DataAttribute::Value(v)) => Some(v.clone()),
                    _ => None,
                })
                .expect("cmp data"),
            other => panic!("not a cmp: {other:?}"),
        }
    }

    #[test]
    fn prefixes_are_masked_and_host_addresses_compared_whole() {
        let net: IpNet = "10.244.1.7/24".parse().unwrap();
        let rule = expr::addr_in(&net.trunc(), true, true);
        assert_eq!(rule.len(), 3, "payload, bitwise, cmp");
        match &rule[1] {
            Expressions::Bitwise(attrs) => {
                assert!(attrs.contains(&Bitwise::Mask(DataAttribute::Value(vec![255, 255, 255, 0]))))
            }
            other => panic!("not a mask: {other:?}"),
        }
        assert_eq!(cmp_data(&rule[2]), vec![10, 244, 1, 0]);
        let host: IpNet = "10.244.1.7/32".parse().unwrap();
        let rule = expr::addr_in(&host, false, false);
        assert_eq!(rule.len(), 2, "payload, cmp");
        assert_eq!(cmp_data(&rule[1]), vec![10, 244, 1, 7]);
        let v6: IpNet = "fd00:1::/64".parse().unwrap();
        let rule = expr::addr_in(&v6, true, true);
        assert_eq!(cmp_data(&rule[2]).len(), 16);
    }

    #[test]
    fn interface_names_are_padded_to_ifnamsiz() {
        let rule = expr::iifname("lb0");
        let mut want = b"lb0".to_vec();
        want.resize(IFNAMSIZ, 0);
        assert_eq!(cmp_data(&rule[1]), want);
    }

    #[test]
    fn comments_round_trip_through_user_data() {
        let u = udata_comment("lanbridge:net");
        assert_eq!(u[0], UDATA_COMMENT);
        assert_eq!(comment_of(&u).as_deref(), Some("lanbridge:net"));
        // Another TLV first (iptables-nft may add its own).
        let mut v = vec![7, 2, 1, 2];
        v.extend(u);
        assert_eq!(comment_of(&v).as_deref(), Some("lanbridge:net"));
        assert_eq!(comment_of(&[]), None);
    }
}
