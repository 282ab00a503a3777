//! Embedding e7-core in a userspace program: load rules, open real sockets, identify them through
//! `/proc` (socket inode → owning process → executable) and decide their packets. The UDP socket is
//! allowed by an exact rule; the TCP socket matches no rule (`unkrule` = block): its first packet
//! raises a PENDING event, the second is squelched (same program, same second).
//!
//! Run: `cargo run -p e7-core --features std --example embed`

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use e7_core::{
    Action, Const, Family, Firewall, Flag, Packet, SocketKey, StdSock, PROTO_TCP, PROTO_UDP,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fw = Firewall::new();
    fw.set(Flag::Mode, Const::Enabled.value())?;
    fw.set(Flag::UnkRule, Const::Block.value())?;

    // Rules: this very program may use UDP; everything under /usr/bin/ may use TCP.
    let me = std::fs::read_link("/proc/self/exe")?;
    let me = me.to_str().ok_or("executable path is not UTF-8")?;
    fw.add_rule(PROTO_UDP, me, Action::Allow)?;
    fw.add_rule(PROTO_TCP, "/usr/bin/", Action::Allow)?;
    // Bad input is refused with a message that says what would be right.
    if let Err(e) = fw.add_rule(47, "/usr/bin/x", Action::Allow) {
        println!("refused as expected: {e}");
    }
    for (proto, path, action) in fw.rules() {
        println!("rule: {} {proto} {path}", action.alias());
    }

    // Real sockets of this process; userspace keys them by inode (the kernel uses the cookie).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
    for (proto, fd) in [(PROTO_UDP, udp.as_raw_fd()), (PROTO_TCP, tcp.as_raw_fd())] {
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))?.ino();
        // No sender given: the owner is found by walking /proc/*/fd.
        let sock = StdSock {
            key: SocketKey(inode),
            inode,
            sender: None,
        };
        let pkt = Packet {
            peer: e7_core::Peer::UNKNOWN,
            sk: Some(&sock),
            proto,
            uid: 0,
            family: Family::Ipv4,
            malformed: false,
            in_task: true,
        };
        for packet in 1..=2 {
            let (d, event) = fw.decide(&pkt);
            println!(
                "socket inode {inode}, proto {proto}, packet {packet}: {:?} ({:?}), event {:?}",
                d.verdict,
                d.reason,
                event.map(|e| (e.kind, e.path.to_string()))
            );
        }
    }
    println!(
        "packets decided: {}, rule generation {}",
        fw.get(Flag::QPackets),
        fw.engine().rules.read().generation()
    );
    Ok(())
}
