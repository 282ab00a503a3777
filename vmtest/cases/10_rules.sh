# Rules by exact path, by folder and with the `any` protocol, for every protocol the module identifies,
# over IPv4 and IPv6. /opt/a/e7-probe and /opt/b/e7-probe are the same binary at two paths; /usr/bin/e7-probe
# is a third copy outside /opt. Names: <proto>_<what>, proto = udp udp6 tcp tcp6 icmp icmp6.

# Block rule for a's exact path: a is dropped, the identical b is not.
t_block_exact() {
    _rp=$(rule_proto "$1")
    enforce
    must e7 block "$_rp" "$PA"
    expect_rule block "$_rp" "$PA"
    expect blocked "$PA" "$1"
    expect delivered "$PB" "$1"
}

# Allow rule for a's exact path with unkrule=block: only a gets through.
t_allow_exact() {
    _rp=$(rule_proto "$1")
    enforce block
    expect blocked "$PA" "$1"
    must e7 allow "$_rp" "$PA"
    expect_rule allow "$_rp" "$PA"
    expect delivered "$PA" "$1"
    expect blocked "$PB" "$1"
    expect blocked "$PU" "$1"
}

# Folder rules (trailing /) match the programs in that folder only.
t_block_folder() {
    _rp=$(rule_proto "$1")
    enforce
    must e7 block "$_rp" /opt/a/
    expect_rule block "$_rp" /opt/a/
    expect blocked "$PA" "$1"
    expect delivered "$PB" "$1"
    expect delivered "$PU" "$1"
}

t_allow_folder() {
    _rp=$(rule_proto "$1")
    enforce block
    must e7 allow "$_rp" /opt/b/
    expect delivered "$PB" "$1"
    expect blocked "$PA" "$1"
    expect blocked "$PU" "$1"
}

# A rule for another protocol does not apply; `any` applies to this one (exact and folder forms).
t_any() {
    enforce
    must e7 block "$(other_proto "$1")" "$PA"
    expect delivered "$PA" "$1"
    must e7 block any "$PA"
    expect_rule block any "$PA"
    expect blocked "$PA" "$1"
    expect delivered "$PB" "$1"
    must e7 clear
    enforce block
    must e7 allow any /opt/b/
    expect delivered "$PB" "$1"
    expect blocked "$PA" "$1"
}

case_udp_block_exact() { t_block_exact udp4; }
case_udp6_block_exact() { t_block_exact udp6; }
case_tcp_block_exact() { t_block_exact tcp4; }
case_tcp6_block_exact() { t_block_exact tcp6; }
case_icmp_block_exact() { t_block_exact icmp4; }
case_icmp6_block_exact() { t_block_exact icmp6; }
case_udp_allow_exact() { t_allow_exact udp4; }
case_udp6_allow_exact() { t_allow_exact udp6; }
case_tcp_allow_exact() { t_allow_exact tcp4; }
case_tcp6_allow_exact() { t_allow_exact tcp6; }
case_icmp_allow_exact() { t_allow_exact icmp4; }
case_icmp6_allow_exact() { t_allow_exact icmp6; }
case_udp_folder() { t_block_folder udp4; t_allow_folder udp4; }
case_udp6_folder() { t_block_folder udp6; t_allow_folder udp6; }
case_tcp_folder() { t_block_folder tcp4; t_allow_folder tcp4; }
case_tcp6_folder() { t_block_folder tcp6; t_allow_folder tcp6; }
case_icmp_folder() { t_block_folder icmp4; t_allow_folder icmp4; }
case_icmp6_folder() { t_block_folder icmp6; t_allow_folder icmp6; }
case_udp_any() { t_any udp4; }
case_udp6_any() { t_any udp6; }
case_tcp_any() { t_any tcp4; }
case_tcp6_any() { t_any tcp6; }
case_icmp_any() { t_any icmp4; }
case_icmp6_any() { t_any icmp6; }

# Two copies of one program at different paths get different verdicts, on every protocol at once.
case_two_copies() {
    cmp "$PA" "$PB" && ok "same bytes at $PA and $PB" || fail "$PA and $PB differ"
    enforce
    must e7 block any "$PA"
    must e7 allow any "$PB"
    for p in udp4 udp6 tcp4 tcp6 icmp4 icmp6; do
        expect blocked "$PA" "$p"
        expect delivered "$PB" "$p"
    done
}

# An exact rule beats a folder rule, whichever was added first; folders match recursively, deepest wins.
case_rule_precedence() {
    enforce
    must e7 block any /opt/a/
    must e7 allow udp "$PA"
    expect delivered "$PA" udp4
    expect blocked "$PA" tcp4
    must e7 clear
    must e7 allow any "$PB"
    must e7 block any /opt/b/
    expect delivered "$PB" udp6
    expect delivered "$PA" udp6 # not in /opt/b/, no rule, unkrule allow
    # Folder rules are recursive, and the deeper folder wins.
    must e7 block any /opt/
    expect blocked "$PA" udp6
    expect delivered "$PB" udp6
    must e7 allow any /opt/a/
    expect delivered "$PA" udp4
    expect delivered "$PU" udp4 # /usr/bin is under none of them
}

# Removing one rule, flipping a rule, and clearing by action.
case_rule_clear_and_flip() {
    enforce
    must e7 block udp "$PA"
    must e7 block tcp "$PA"
    must e7 allow udp "$PB"
    expect_rules 3
    expect_out 'rules=3 count=3' "$PU" compat-query
    must e7 clear udp "$PA"
    expect_rules 2
    expect delivered "$PA" udp4
    expect blocked "$PA" tcp4
    # Same (protocol, path) with the other action flips the rule in place.
    must e7 allow tcp "$PA"
    expect_rules 2
    expect_rule allow tcp "$PA"
    expect delivered "$PA" tcp4
    must e7 block icmp "$PB"
    must e7 clear allow
    expect_rules 1
    expect_rule block icmp "$PB"
    must e7 clear block
    expect_rules 0
    expect_out 'rules=0 count=0' "$PU" compat-query
}
