//! An in-memory kernel for tests: the module's control-plane semantics without netlink.
//!
//! It keeps a rule list in insertion order and one value per flag (defaults from e7-proto), checks
//! values with e7-proto exactly as the module does, and can be told to refuse: a capacity (ENOSPC
//! when full), "not root" (EPERM for admin commands), "not loaded", or a failure on the N-th
//! request. Every request is recorded, so tests can assert what the CLI sent.

use crate::error::CliError;
use crate::grammar::Action;
use crate::grammar::ClearSpec;
use crate::kernel::{Change, Event, Kernel, Notice, Op, Outcome, ProgStat, Rule, RuleSet};
use e7_proto::qual::Qualifiers;
use e7_proto::{Const, Flag, ValueClass};
use std::sync::mpsc::{channel, Receiver, Sender};

/// The fake kernel. Public so the crate's integration tests can use it too.
#[derive(Debug)]
pub struct FakeKernel {
    /// Rules in precedence order.
    pub rules: Vec<Rule>,
    /// Flag values by index.
    pub flags: Vec<u32>,
    /// Maximum number of rules (ENOSPC beyond).
    pub capacity: usize,
    /// `false` simulates an unprivileged caller: admin commands get EPERM.
    pub privileged: bool,
    /// `false` simulates a missing module: every call fails with "not loaded".
    pub loaded: bool,
    /// Fail the request with this 0-based index (counted over all calls) with EIO.
    pub fail_at: Option<usize>,
    /// Every request received, in order.
    pub log: Vec<Op>,
    /// Per-program statistics, as STATS reports them; [`FakeKernel::traffic`] adds to them.
    pub programs: Vec<ProgStat>,
    subscribed: bool,
    notice_tx: Sender<Notice>,
    notice_rx: Option<Receiver<Notice>>,
}

impl Default for FakeKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeKernel {
    /// A freshly loaded module: no rules, default flags, root caller, room for 1024 rules.
    pub fn new() -> Self {
        let (notice_tx, notice_rx) = channel();
        FakeKernel {
            rules: Vec::new(),
            flags: Flag::ALL.iter().map(|f| f.default_value()).collect(),
            capacity: 1024,
            privileged: true,
            loaded: true,
            fail_at: None,
            log: Vec::new(),
            programs: Vec::new(),
            subscribed: false,
            notice_tx,
            notice_rx: Some(notice_rx),
        }
    }

    /// The current value of a flag.
    pub fn flag(&self, flag: Flag) -> u32 {
        self.flags
            .get(flag.index() as usize)
            .copied()
            .unwrap_or_else(|| flag.default_value())
    }

    /// Emit a packet event (delivered only while subscribed, like the module).
    pub fn emit(&mut self, event: Event) {
        if self.subscribed {
            let _ = self.notice_tx.send(Notice::Event(event));
        }
    }

    /// `packets` packets of `bytes` bytes each sent by program `path` with protocol `prot`,
    /// decided as the module would for a plain rule table: the first rule whose path is `path`
    /// (or a folder holding it) and whose protocol is `prot` or `any`, else the `unkrule` flag;
    /// nothing is counted while the mode is `disabled` (the module's hooks are not registered).
    /// Returns the verdict.
    pub fn traffic(&mut self, path: &str, prot: u32, packets: u64, bytes: u64) -> Action {
        let rule = self.rules.iter().find(|r| {
            r.qual.is_none()
                && (r.prot == prot || r.prot == Const::Any.value())
                && (r.path == path || (r.path.ends_with('/') && path.starts_with(&r.path)))
        });
        let mode = self.flag(Flag::Mode);
        let (verdict, reason) = if mode == Const::Block.value() {
            (Action::Block, e7_proto::stats::Reason::Other)
        } else if let Some(r) = rule {
            (r.action, e7_proto::stats::Reason::Rule)
        } else if self.flag(Flag::UnkRule) == Const::Block.value() {
            (Action::Block, e7_proto::stats::Reason::NoRule)
        } else {
            (Action::Allow, e7_proto::stats::Reason::NoRule)
        };
        if mode == Const::Disabled.value() {
            return Action::Allow;
        }
        let i = match self.programs.iter().position(|p| p.path == path) {
            Some(i) => i,
            None => {
                self.programs.push(ProgStat {
                    path: path.to_string(),
                    prot,
                    verdict,
                    reason,
                    accept_packets: 0,
                    accept_bytes: 0,
                    drop_packets: 0,
                    drop_bytes: 0,
                    first_seen_ago: 0,
                    last_seen_ago: 0,
                });
                self.programs.len() - 1
            }
        };
        let p = &mut self.programs[i];
        p.prot = prot;
        p.verdict = verdict;
        p.reason = reason;
        p.last_seen_ago = 0;
        match verdict {
            Action::Allow => {
                p.accept_packets += packets;
                p.accept_bytes += packets * bytes;
            }
            Action::Block => {
                p.drop_packets += packets;
                p.drop_bytes += packets * bytes;
            }
        }
        verdict
    }

    /// Time passes for the statistics: every program's first/last seen grows by `secs`.
    pub fn age(&mut self, secs: u32) {
        for p in &mut self.programs {
            p.first_seen_ago = p.first_seen_ago.saturating_add(secs);
            p.last_seen_ago = p.last_seen_ago.saturating_add(secs);
        }
    }

    fn refuse(op: &Op, errno: i32, message: &str) -> CliError {
        CliError::from_errno(op.word(), errno, Some(message))
    }

    /// The requests the module gives GENL_ADMIN_PERM: every change, and SUBSCRIBE.
    fn admin(op: &Op) -> bool {
        matches!(op, Op::Change(_) | Op::Subscribe)
    }
}

impl Kernel for FakeKernel {
    fn check_alive(&mut self) -> Result<(), CliError> {
        if self.loaded {
            Ok(())
        } else {
            Err(CliError::Failed("the e7 module was unloaded".into()))
        }
    }

    fn call(&mut self, op: &Op) -> Result<Outcome, CliError> {
        if !self.loaded {
            return Err(CliError::NotLoaded);
        }
        let index = self.log.len();
        self.log.push(op.clone());
        if self.fail_at == Some(index) {
            return Err(Self::refuse(op, 5, "injected failure"));
        }
        if !self.privileged && Self::admin(op) {
            return Err(Self::refuse(op, 1, "needs CAP_NET_ADMIN"));
        }
        match op {
            Op::Change(Change::AddRule { action, prot, path }) => {
                if e7_proto::validate_rule_protocol(*prot).is_err() {
                    return Err(Self::refuse(op, 22, "bad protocol"));
                }
                if e7_proto::validate_rule_path(path.as_bytes()).is_err() {
                    return Err(Self::refuse(op, 22, "bad path"));
                }
                if let Some(rule) = self
                    .rules
                    .iter_mut()
                    .find(|r| r.prot == *prot && r.path == *path)
                {
                    rule.action = *action;
                } else if self.rules.len() >= self.capacity {
                    return Err(Self::refuse(op, 28, "rule table full"));
                } else {
                    self.rules.push(Rule {
                        action: *action,
                        prot: *prot,
                        path: path.clone(),
                        qual: Qualifiers::NONE,
                    });
                }
                Ok(Outcome::Done)
            }
            Op::Change(Change::AddQualified {
                action,
                prot,
                path,
                qual,
            }) => {
                // As a module that announces the qualifiers would: the same checks as the
                // engine's `QualRule::new`, then add or flip.
                if self.flag(Flag::Qualifiers) & qual.features() != qual.features() {
                    return Err(Self::refuse(op, 22, "unknown attribute"));
                }
                if e7_proto::validate_rule_path(path.as_bytes()).is_err()
                    || qual.check(*prot).is_err()
                {
                    return Err(Self::refuse(op, 22, "bad rule"));
                }
                if let Some(rule) = self
                    .rules
                    .iter_mut()
                    .find(|r| r.prot == *prot && r.path == *path && r.qual == *qual)
                {
                    rule.action = *action;
                } else if self.rules.len() >= self.capacity {
                    return Err(Self::refuse(op, 28, "rule table full"));
                } else {
                    self.rules.push(Rule {
                        action: *action,
                        prot: *prot,
                        path: path.clone(),
                        qual: *qual,
                    });
                }
                Ok(Outcome::Done)
            }
            Op::Change(Change::Enable) => {
                self.flags[Flag::Mode.index() as usize] = Const::Enabled.value();
                Ok(Outcome::Done)
            }
            Op::Change(Change::Clear(spec)) => {
                match spec {
                    ClearSpec::All => self.rules.clear(),
                    ClearSpec::Action(a) => self.rules.retain(|r| r.action != *a),
                    ClearSpec::Rule { prot, path } => {
                        self.rules
                            .retain(|r| !(r.prot == *prot && r.path == *path && r.qual.is_none()));
                    }
                    ClearSpec::Qualified { prot, path, qual } => {
                        self.rules
                            .retain(|r| !(r.prot == *prot && r.path == *path && r.qual == *qual));
                    }
                }
                Ok(Outcome::Done)
            }
            Op::Change(Change::Set { flag, value }) => {
                if flag.class() == ValueClass::ReadOnly {
                    return Err(Self::refuse(op, 22, "read-only flag"));
                }
                if flag.validate(*value).is_err() {
                    return Err(Self::refuse(op, 22, "bad value"));
                }
                self.flags[flag.index() as usize] = *value;
                Ok(Outcome::Done)
            }
            Op::Get(flag) => Ok(Outcome::Value {
                flag: *flag,
                value: self.flag(*flag),
            }),
            Op::Query => Ok(Outcome::Rules(RuleSet {
                mode: self.flag(Flag::Mode),
                rules: self.rules.clone(),
            })),
            Op::Subscribe => {
                self.subscribed = true;
                Ok(Outcome::Done)
            }
            Op::Disconnect => {
                self.subscribed = false;
                Ok(Outcome::Done)
            }
            Op::Stats => {
                // As the module: admins always, others only with `statsunpriv` enabled.
                if !self.privileged && self.flag(Flag::StatsUnpriv) != Const::Enabled.value() {
                    return Err(Self::refuse(
                        op,
                        1,
                        "per-program statistics need CAP_NET_ADMIN (or `set statsunpriv enabled`)",
                    ));
                }
                Ok(Outcome::Stats(self.programs.clone()))
            }
        }
    }

    fn notices(&mut self) -> Option<Receiver<Notice>> {
        self.notice_rx.take()
    }
}
