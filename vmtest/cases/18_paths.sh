# Rules on symbolic link paths: the kernel names a program by its executable's real path, so the CLI
# resolves a rule path through links before sending it (merged /usr: `/bin -> usr/bin`). Before, such a
# rule was accepted and never matched.

case_rule_on_symlink() {
    enforce
    rm -rf /opt/link /opt/alink
    ln -s a /opt/link                     # /opt/link -> /opt/a (a directory link, like /bin -> usr/bin)
    ln -s /opt/a/e7-probe /opt/alink      # a link to the program itself
    run e7 block any /opt/link/e7-probe
    if [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -qF 'the rule is for `/opt/a/e7-probe`'; then
        ok "block via a directory link: resolved with a note: $(short "$OUT")"
    else
        fail "e7 block any /opt/link/e7-probe -> rc $RC: $(short "$OUT")"
    fi
    expect_rule block any "$PA"
    expect blocked "$PA" udp4
    expect blocked /opt/link/e7-probe udp6
    expect delivered "$PB" udp4
    must e7 allow udp /opt/alink
    expect_rule allow udp "$PA"
    expect delivered "$PA" udp4
    # clear resolves the same way; `check` notes it and succeeds.
    must e7 clear udp /opt/link/e7-probe
    expect blocked "$PA" udp4
    printf 'block tcp /opt/link/\n' > /tmp/link-rules.e7
    expect_out 'note: `/opt/link/`' e7 check /tmp/link-rules.e7
    rm -f /opt/link /opt/alink
}
