//! `e7 top` against the fake kernel, for the tmux test (`tests/top_tmux.rs`) and for trying the
//! view without a module: `cargo run -p e7-cli --example fake_top -- DIR`.
//!
//! The fake kernel (filtering enabled, no rules) counts traffic that the caller asks for: before
//! each STATS request it reads `DIR/send` if present — lines `PATH PROTO PACKETS BYTES` — lets
//! each program "send" that many packets (decided by the fake's rules, like the module), appends
//! the line to `DIR/sent` (the senders' own tally) and removes the file. On exit it writes the
//! rule table to `DIR/rules`, one `e7` line per rule, so a test can check that a key really added
//! a rule to the kernel and did not just draw one.

use e7_cli::error::CliError;
use e7_cli::fake::FakeKernel;
use e7_cli::grammar;
use e7_cli::kernel::{Kernel, Notice, Op, Outcome};
use e7_proto::{Const, Flag};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::Duration;

struct Sim {
    fake: FakeKernel,
    dir: PathBuf,
}

impl Sim {
    fn pump(&mut self) {
        let send = self.dir.join("send");
        let Ok(text) = std::fs::read_to_string(&send) else {
            return;
        };
        let _ = std::fs::remove_file(&send);
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let [path, prot, packets, bytes] = w[..] else {
                continue;
            };
            let (Ok(prot), Ok(packets), Ok(bytes)) = (prot.parse(), packets.parse(), bytes.parse())
            else {
                continue;
            };
            self.fake.traffic(path, prot, packets, bytes);
            let mut sent = std::fs::read_to_string(self.dir.join("sent")).unwrap_or_default();
            sent.push_str(line);
            sent.push('\n');
            let _ = std::fs::write(self.dir.join("sent"), sent);
        }
    }
}

impl Kernel for Sim {
    fn call(&mut self, op: &Op) -> Result<Outcome, CliError> {
        if *op == Op::Stats {
            self.pump();
        }
        self.fake.call(op)
    }

    fn notices(&mut self) -> Option<Receiver<Notice>> {
        self.fake.notices()
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let mut fake = FakeKernel::new();
    fake.flags[Flag::Mode.index() as usize] = Const::Enabled.value();
    let mut sim = Sim { fake, dir };
    let opts = e7_cli::top::Options {
        interval: Duration::from_millis(200),
        count: None,
    };
    let r = e7_cli::top::run(&mut sim, opts);
    let rules: String = sim
        .fake
        .rules
        .iter()
        .map(|r| grammar::rule_line(r.action, r.prot, &r.path, &r.qual) + "\n")
        .collect();
    let _ = std::fs::write(sim.dir.join("rules"), rules);
    if let Err(e) = r {
        eprintln!("fake_top: {e}");
        std::process::exit(1);
    }
}
