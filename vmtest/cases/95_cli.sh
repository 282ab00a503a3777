# The e7 command as the VM cases and users drive it: the console from a script (`e7 shell < file`), every
# example line of the original README, exit codes, JSON shapes, check/run.

# shell_lines LINE...: feed the lines to `e7 shell`; sets OUT/RC.
shell_lines() {
    printf '%s\n' "$@" >/tmp/shell.in
    run sh -c 'e7 shell </tmp/shell.in'
}

# Every example of the original README (orthopteroid/EftirlitSeven), in the README's order, with the
# state each one must produce. `set mode disable` and `disconnect` are the README's spellings. A rule path
# through a symbolic link is sent as the program the kernel sees: here /bin/ping is busybox's applet link,
# so its rule is for the busybox binary (`readlink -f`), with a note.
case_cli_readme_examples() {
    ping_real=$(readlink -f /bin/ping)
    shell_lines "allow udp /bin/ping" "allow tcp /bin/netcat" "allow tcp /usr/bin/socat" "clear tcp /usr/bin/socat"
    [ "$RC" = 0 ] && ok "first four lines: rc 0" || fail "first four lines -> rc $RC: $(short "$OUT")"
    if [ "$ping_real" != /bin/ping ]; then
        printf '%s' "$OUT" | grep -qF "the rule is for \`$ping_real\`" && ok "note: /bin/ping is $ping_real" \
            || fail "no note that /bin/ping resolves to $ping_real: $(short "$OUT")"
    fi
    expect_rules 2
    expect_rule allow udp "$ping_real"
    expect_rule allow tcp /bin/netcat
    shell_lines "allow /usr/lib/firefox/firefox"
    expect_rule allow any /usr/lib/firefox/firefox
    expect_rules 3
    shell_lines "clear allow"
    expect_rules 0
    shell_lines "block udp /usr/bin/socat"
    expect_rule block udp /usr/bin/socat
    shell_lines "clear block"
    expect_rules 0
    must e7 set mode enabled
    shell_lines "set mode disable"
    [ "$RC" = 0 ] && ok "'set mode disable' accepted" || fail "'set mode disable' -> rc $RC: $(short "$OUT")"
    expect_flag mode disabled
    shell_lines "get mode"
    printf '%s' "$OUT" | grep -qi disabled && ok "get mode: $(short "$OUT")" || fail "get mode -> $(short "$OUT")"
    shell_lines "# comment"
    [ "$RC" = 0 ] && ok "comment line: rc 0" || fail "comment line -> rc $RC: $(short "$OUT")"
    must e7 allow udp /bin/ping
    must e7 block tcp /usr/bin/socat
    shell_lines "query"
    printf '%s' "$OUT" | grep -qF "$ping_real" && printf '%s' "$OUT" | grep -qF /usr/bin/socat \
        && ok "query lists both rules" || fail "query output: $(short "$OUT")"
    shell_lines "query allow"
    printf '%s' "$OUT" | grep -qF "$ping_real" && ! printf '%s' "$OUT" | grep -qF /usr/bin/socat \
        && ok "query allow lists only the allow rule" || fail "query allow output: $(short "$OUT")"
    shell_lines "query block"
    printf '%s' "$OUT" | grep -qF /usr/bin/socat && ! printf '%s' "$OUT" | grep -qF "$ping_real" \
        && ok "query block lists only the block rule" || fail "query block output: $(short "$OUT")"
    shell_lines "quit" "block udp /after/quit"
    [ "$RC" = 0 ] && ok "quit: rc 0" || fail "quit -> rc $RC: $(short "$OUT")"
    qjson | grep -qF /after/quit && fail "a line after 'quit' was executed" || ok "nothing runs after quit"
    shell_lines "disconnect"
    [ "$RC" = 0 ] && ok "disconnect accepted" || fail "disconnect -> rc $RC: $(short "$OUT")"
    shell_lines "bye"
    [ "$RC" = 0 ] && ok "bye accepted" || fail "bye -> rc $RC: $(short "$OUT")"
    shell_lines "allow any /bin/" "block tcp /usr/bin/"
    expect_rule allow any /bin/
    expect_rule block tcp /usr/bin/
    expect_rules 4
    # The same examples as one script file through `e7 run` (stops at quit).
    must e7 clear
    cat >/tmp/readme.e7 <<'X'
allow udp /bin/ping
allow tcp /bin/netcat
allow tcp /usr/bin/socat
clear tcp /usr/bin/socat
allow /usr/lib/firefox/firefox
clear allow
block udp /usr/bin/socat
clear block
set mode disable
get mode
# comment
query
query allow
query block
allow any /bin/
block tcp /usr/bin/
quit
disconnect
block udp /never/reached
X
    must e7 run /tmp/readme.e7
    expect_rules 2
    expect_rule allow any /bin/
    expect_rule block tcp /usr/bin/
}

# The original's argument-less forms: `block` = set mode block, `allow` = set mode disabled, `enable`.
case_cli_mode_aliases() {
    shell_lines "block"
    expect_flag mode block
    shell_lines "enable"
    expect_flag mode enabled
    shell_lines "allow"
    expect_flag mode disabled
    shell_lines "enable" "disable"
    expect_flag mode disabled
    expect_rules 0
}

# A longer console script: comments, blank lines, quoting, get/set, queries; `e7` without arguments is the
# console too, and `e7 run -` reads stdin.
case_cli_shell_script() {
    cat >/tmp/script.e7 <<'X'
# a console session driven from a file

allow udp /opt/a/e7-probe   # trailing comment
block any "/opt/dir with space/"
set unkrule block
get unkrule
enable
query
X
    run sh -c 'e7 shell </tmp/script.e7'
    [ "$RC" = 0 ] && ok "e7 shell < script: rc 0" || fail "e7 shell < script -> rc $RC: $(short "$OUT")"
    printf '%s' "$OUT" | grep -qi block && ok "get unkrule printed: $(short "$OUT")" || fail "no get output: $(short "$OUT")"
    expect_rules 2
    expect_rule allow udp "$PA"
    expect_rule block any "/opt/dir with space/"
    expect_flag mode enabled
    expect delivered "$PA" udp4
    expect blocked "$PB" udp4
    must e7 clear
    run sh -c 'printf "allow tcp /x/y\nget mode\n" | e7'
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -qi enabled && ok "bare e7 reads the console from stdin" \
        || fail "printf ... | e7 -> rc $RC: $(short "$OUT")"
    expect_rule allow tcp /x/y
    run sh -c 'printf "clear\nblock icmp /x/z\n" | e7 run -'
    [ "$RC" = 0 ] && ok "e7 run - : rc 0" || fail "e7 run - -> rc $RC: $(short "$OUT")"
    expect_rules 1
    expect_rule block icmp /x/z
}

case_cli_check_and_errors() {
    printf 'allow udp /bin/ping\nset mode enabled\n' >/tmp/good.e7
    must e7 check /tmp/good.e7
    expect_rules 0 # check never touches the module
    printf 'allow udp /bin/ping\nallow udp relative/path\nfrobnicate\n' >/tmp/bad.e7
    run e7 check /tmp/bad.e7
    [ "$RC" = 2 ] && printf '%s' "$OUT" | grep -q '2' && ok "check bad file: rc 2: $(short "$OUT")" \
        || fail "e7 check bad.e7 -> rc $RC, want 2 and the line number: $(short "$OUT")"
    run e7 run /tmp/bad.e7
    [ "$RC" = 2 ] && ok "run bad file: rc 2" || fail "e7 run bad.e7 -> rc $RC, want 2: $(short "$OUT")"
    expect_rc 2 e7 frobnicate
    expect_rc 2 e7 allow udp relative/path
    expect_rc 2 e7 allow udp /a/../b
    expect_rc 2 e7 allow 256 /bin/x
    expect_rc 2 e7 set mode
    expect_rc 2 e7 get
    run e7 allow udp "/$(printf 'x%.0s' $(seq 300))"
    [ "$RC" = 2 ] && printf '%s' "$OUT" | grep -q 255 && ok "300-byte path refused: $(short "$OUT")" \
        || fail "300-byte rule path -> rc $RC, want 2 and a message naming the 255-byte limit: $(short "$OUT")"
    expect_rc 1 e7 run /tmp/does-not-exist.e7
    expect_rules 0
}

# Exit code 3 when the module is not loaded, with a message that says so.
case_cli_module_missing() {
    must rmmod e7
    for c in query status "get mode" "set mode enabled" "allow udp /bin/x" monitor; do
        # shellcheck disable=SC2086
        run e7 $c
        [ "$RC" = 3 ] && printf '%s' "$OUT" | grep -qi 'module\|loaded\|insmod' && ok "e7 $c: rc 3: $(short "$OUT")" \
            || fail "e7 $c without module -> rc $RC, want 3 and a 'module not loaded' message: $(short "$OUT")"
    done
    must insmod "$E7_KO"
    must e7 status
}

# The JSON the contract documents, exactly.
case_cli_json() {
    run e7 --json get mode
    j=$(printf '%s' "$OUT" | tr -d ' \n')
    [ "$j" = '{"flag":"mode","value":"disabled","raw":65284}' ] && ok "get mode JSON: $j" || fail "get mode JSON: $j"
    must e7 allow udp /usr/bin/ping
    must e7 set mode enabled
    j=$(qjson)
    [ "$j" = '{"mode":"enabled","count":1,"rules":[{"action":"allow","protocol":"udp","path":"/usr/bin/ping"}]}' ] \
        && ok "query JSON: $j" || fail "query JSON: $j"
    must e7 block any /x/
    j=$(qjson)
    printf '%s' "$j" | grep -qF '{"action":"block","protocol":"any","path":"/x/"}' && ok "any rule in JSON" || fail "query JSON: $j"
    run e7 --json status
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q '{' && ok "status JSON: $(short "$OUT")" || fail "e7 --json status -> rc $RC: $(short "$OUT")"
}

# Rules that say where and who (issue 11) go to the module, which announces every qualifier it enforces
# (`qualifiers` 7: destinations, ports, users); `e7 run` loads them, `query` lists them, `e7 save` writes them
# back the same, `clear` with the qualifiers removes exactly that rule. (A module announcing none is never
# sent one: crates/e7-cli/tests/qualifiers.rs, a_module_without_qualifiers_is_never_sent_one.) The
# enforcement itself: cases qual_* (22_qualifiers.sh).
case_cli_qualified_rules() {
    run e7 get qualifiers
    [ "$RC" = 0 ] && [ "$OUT" = "qualifiers 7" ] && ok "module announces every qualifier: $OUT" \
        || fail "e7 get qualifiers -> rc $RC: $(short "$OUT"), want 'qualifiers 7'"
    printf '%s\n' 'allow tcp /usr/bin/firefox to any port 80,443' 'block any / to 10.0.0.0/8' \
        'block any / user 0' 'allow any /usr/bin/ to localhost' 'allow udp /usr/bin/x to 2001:db8::/32 port 53' \
        'allow tcp /usr/bin/curl' >/tmp/qual.e7
    must e7 check /tmp/qual.e7
    must e7 run /tmp/qual.e7
    expect_rules 6
    for line in 'allow tcp /usr/bin/firefox to any port 80,443' 'block any / to 10.0.0.0/8' 'block any / user 0' \
        'allow any /usr/bin/ to localhost' 'allow udp /usr/bin/x to 2001:db8::/32 port 53'; do
        e7 query | grep -qxF "$line" && ok "listed: $line" || fail "not listed: $line; query: $(short "$(e7 query)")"
    done
    must e7 save /tmp/qual-saved.e7
    for line in 'allow tcp /usr/bin/firefox to any port 80,443' 'block any / user 0' \
        'allow udp /usr/bin/x to 2001:db8::/32 port 53'; do
        grep -qxF "$line" /tmp/qual-saved.e7 && ok "saved: $line" || fail "not saved: $line: $(short "$(cat /tmp/qual-saved.e7)")"
    done
    # Clear with the qualifiers removes that rule only; without them, only the plain rule.
    must e7 clear any / to 10.0.0.0/8
    expect_rules 5
    expect_rc 1 e7 clear any / to 10.0.0.0/8
    # Adding the same qualified rule with the other action flips it in place.
    must e7 block tcp /usr/bin/firefox to any port 80,443
    expect_rules 5
    e7 query | grep -qxF 'block tcp /usr/bin/firefox to any port 80,443' && ok "flipped" || fail "not flipped: $(short "$(e7 query)")"
    # A restore of the saved file gives the saved table back.
    must e7 clear
    must e7 run /tmp/qual-saved.e7
    expect_rules 6
    # A bad qualifier is a usage error before anything is asked.
    expect_rc 2 e7 allow icmp /bin/x port 53
    expect_rc 2 e7 block any / to 10.0.0.1/8
}
