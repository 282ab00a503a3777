#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The Rust object's code generation, derived from the kernel's own .config: one table maps each kernel
# option that changes how code must be generated to the rustc flags that do the same thing, and to the
# check that proves the built object honours it.
#
#   codegen.sh flags CONFIG          the RUSTFLAGS for a kernel configured by CONFIG (KDIR/.config)
#   codegen.sh verify CONFIG OBJ     refuse OBJ (exit 1, naming the option) if its machine code does not
#                                    match what CONFIG demands
#
# Why: a module runs inside the kernel's mitigations. Debian 6.1 uses retpolines, return thunks and SLS;
# 6.12 adds IBT (every indirectly reachable function starts with ENDBR64, or the CPU faults when the C shim
# calls it through a pointer... and objtool warns) and 16-byte call padding that call-depth tracking patches.
# A Rust object built for another configuration links fine and then either traps or silently skips the
# mitigation; the check makes that a build error.
#
# Table (kernel option, or its pre-6.9 name | rustc flags | check):
#   CONFIG_MITIGATION_RETPOLINE|CONFIG_RETPOLINE  -Zretpoline-external-thunk -Zindirect-branch-cs-prefix
#        no indirect call/jmp left (they go through __x86_indirect_thunk_*)
#   CONFIG_MITIGATION_RETHUNK|CONFIG_RETHUNK      -Zfunction-return=thunk-extern
#        no bare `ret` left (returns jump to __x86_return_thunk)
#   CONFIG_MITIGATION_SLS|CONFIG_SLS              -Ctarget-feature=+harden-sls-ret,+harden-sls-ijmp
#        every `ret` and indirect `jmp` is followed by int3 (flags only needed, and only passed, when
#        return thunks or retpolines leave a bare ret / indirect jmp)
#   CONFIG_X86_KERNEL_IBT                         -Zcf-protection=branch -Cjump-tables=no
#        every global function starts with endbr64 (and no jump tables: objtool --ibt rejects them)
#   CONFIG_CALL_PADDING (CONFIG_FUNCTION_PADDING_BYTES=N)  -Zpatchable-function-entry=N,N
#        every global function is preceded by N bytes of nop padding
#   CONFIG_FUNCTION_ALIGNMENT=N (N > 0)            -Zmin-function-alignment=N
#        every global function starts on an N-byte boundary
set -euo pipefail

die() { printf 'e7: %s\n' "$*" >&2; exit 1; }

# opt CONFIG NAME...: the value of the first NAME set in CONFIG ("" when none is).
opt() {
    local cfg="$1" n v
    shift
    for n in "$@"; do
        v="$(sed -n "s/^$n=//p" "$cfg" | tr -d '"')"
        [ -n "$v" ] && { echo "$v"; return; }
    done
    echo ""
}

# The option name CONFIG actually uses (for messages): the first NAME present.
optname() {
    local cfg="$1" n
    shift
    for n in "$@"; do
        grep -q "^$n=" "$cfg" && { echo "$n"; return; }
    done
    echo "$1"
}

retpoline() { [ "$(opt "$1" CONFIG_MITIGATION_RETPOLINE CONFIG_RETPOLINE)" = y ]; }
rethunk() { [ "$(opt "$1" CONFIG_MITIGATION_RETHUNK CONFIG_RETHUNK)" = y ]; }
sls() { [ "$(opt "$1" CONFIG_MITIGATION_SLS CONFIG_SLS)" = y ]; }
ibt() { [ "$(opt "$1" CONFIG_X86_KERNEL_IBT)" = y ]; }
padding() { [ "$(opt "$1" CONFIG_CALL_PADDING)" = y ] && opt "$1" CONFIG_FUNCTION_PADDING_BYTES || echo 0; }
alignment() { local a; a="$(opt "$1" CONFIG_FUNCTION_ALIGNMENT)"; echo "${a:-0}"; }

cmd_flags() {
    local cfg="$1" f=() pad al
    retpoline "$cfg" && f+=(-Zretpoline-external-thunk -Zindirect-branch-cs-prefix)
    rethunk "$cfg" && f+=(-Zfunction-return=thunk-extern)
    # With return thunks and retpolines no bare ret or indirect jmp is left for SLS to pad, and rustc warns
    # that these LLVM features are "unknown and unstable": they are only passed when they have an effect.
    if sls "$cfg" && ! { rethunk "$cfg" && retpoline "$cfg"; }; then
        f+=("-Ctarget-feature=+harden-sls-ret,+harden-sls-ijmp")
    fi
    ibt "$cfg" && f+=(-Zcf-protection=branch -Cjump-tables=no)
    pad="$(padding "$cfg")"
    [ "${pad:-0}" -gt 0 ] && f+=("-Zpatchable-function-entry=$pad,$pad")
    al="$(alignment "$cfg")"
    [ "$al" -gt 0 ] && f+=("-Zmin-function-alignment=$al")
    echo "${f[*]}"
}

# The object's code as "ADDR<TAB>MNEMONIC OPERANDS" lines (objdump, AT&T syntax), section by section.
disasm() {
    objdump -d --no-show-raw-insn -M att "$1" | sed -n 's/^ *\([0-9a-f]*\):\t\(.*\)$/\1\t\2/p'
}

# Global functions defined in OBJ: "NAME SECTION-INDEX VALUE" per line.
global_funcs() {
    readelf -sW "$1" | awk '$4=="FUNC" && $5=="GLOBAL" && $7!="UND" {print $8, $7, $2}'
}

# bytes OBJ SECIDX OFFSET LEN: hex bytes (no spaces) of section SECIDX at OFFSET.
bytes() {
    local obj="$1" idx="$2" off="$3" len="$4" secoff
    secoff="$(readelf -SW "$obj" | sed 's/\[ */[/' | awk -v i="[$idx]" '$1==i {print $5}')"
    [ -n "$secoff" ] || return 1
    od -An -tx1 -v -j $((16#$secoff + off)) -N "$len" "$obj" | tr -d ' \n'
}

cmd_verify() {
    local cfg="$1" obj="$2" code bad n fn idx val pad al b
    [ -f "$cfg" ] || die "no kernel config $cfg"
    [ -f "$obj" ] || die "no object $obj"
    code="$(disasm "$obj")"
    bad=0
    refuse() {
        printf 'e7: %s: %s\n' "$obj" "$*" >&2
        bad=1
    }
    if retpoline "$cfg"; then
        n="$(grep -cE $'\t(call|jmp)q? +\\*' <<<"$code" || true)"
        [ "$n" = 0 ] || refuse "$(optname "$cfg" CONFIG_MITIGATION_RETPOLINE CONFIG_RETPOLINE)=y but the object has" \
            "$n indirect call/jmp instructions (built without -Zretpoline-external-thunk)"
    fi
    if rethunk "$cfg"; then
        n="$(grep -cE $'\tretq? *$' <<<"$code" || true)"
        [ "$n" = 0 ] || refuse "$(optname "$cfg" CONFIG_MITIGATION_RETHUNK CONFIG_RETHUNK)=y but the object has" \
            "$n bare ret instructions (built without -Zfunction-return=thunk-extern)"
    fi
    if sls "$cfg"; then
        # A ret or indirect jmp whose next instruction is not int3.
        n="$(awk -F'\t' '{ if (prev && $2 !~ /^int3/) c++; prev = ($2 ~ /^retq? *$/ || $2 ~ /^jmpq? +\*/) }
            END { if (prev) c++; print c + 0 }' <<<"$code")"
        [ "$n" = 0 ] || refuse "$(optname "$cfg" CONFIG_MITIGATION_SLS CONFIG_SLS)=y but $n ret/indirect jmp" \
            "instructions are not followed by int3 (built without +harden-sls-ret,+harden-sls-ijmp)"
    fi
    pad="$(padding "$cfg")"
    al="$(alignment "$cfg")"
    while read -r fn idx val; do
        [ -n "$fn" ] || continue
        val=$((16#$val))
        if ibt "$cfg"; then
            b="$(bytes "$obj" "$idx" "$val" 4)"
            [ "$b" = f30f1efa ] || refuse "CONFIG_X86_KERNEL_IBT=y but $fn does not start with endbr64" \
                "(starts with $b; built without -Zcf-protection=branch)"
        fi
        if [ "${pad:-0}" -gt 0 ]; then
            b="$(bytes "$obj" "$idx" $((val - pad)) "$pad")"
            [ "$b" = "$(printf '90%.0s' $(seq "$pad"))" ] || refuse "CONFIG_CALL_PADDING=y" \
                "(CONFIG_FUNCTION_PADDING_BYTES=$pad) but $fn is not preceded by $pad nop bytes" \
                "(built without -Zpatchable-function-entry=$pad,$pad)"
        fi
        if [ "$al" -gt 0 ] && [ $((val % al)) != 0 ]; then
            refuse "CONFIG_FUNCTION_ALIGNMENT=$al but $fn is at offset $val (built without -Zmin-function-alignment=$al)"
        fi
    done < <(global_funcs "$obj")
    [ "$bad" = 0 ] || die "$obj: code generation does not match the kernel configuration $cfg (see above)"
}

case "${1:-}" in
    flags)
        [ $# = 2 ] || die "usage: codegen.sh flags KDIR/.config"
        [ -f "$2" ] || die "no kernel config $2 (KDIR is not a configured kernel tree)"
        cmd_flags "$2"
        ;;
    verify)
        [ $# = 3 ] || die "usage: codegen.sh verify KDIR/.config OBJECT"
        cmd_verify "$2" "$3"
        ;;
    *) die "usage: codegen.sh flags|verify KDIR/.config [OBJECT]" ;;
esac
