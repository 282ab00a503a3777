#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Proves that `codegen.sh verify` refuses objects whose code generation does not match a kernel
# configuration, naming the option, and accepts matching ones. Small hand-written objects stand in
# for the Rust object (no kernel tree, no cargo): each case is a config, an assembly body and the
# option the refusal must name ("" = must be accepted). Run by `make -C crates/e7-kmod test`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
t="$(mktemp -d)"
trap 'rm -rf "$t"' EXIT
fails=0

# case NAME CONFIG-LINES ASM WANT
case_() {
    local name="$1" cfg="$2" asm="$3" want="$4" out rc=0
    printf '%b\n' "$cfg" >"$t/config"
    printf '\t.text\n\t.globl f\n\t.type f,@function\n%b\n' "$asm" >"$t/f.s"
    as --64 -o "$t/f.o" "$t/f.s"
    out="$("$here/codegen.sh" verify "$t/config" "$t/f.o" 2>&1)" || rc=$?
    if [ -z "$want" ]; then
        if [ "$rc" = 0 ]; then echo "  ok    $name: accepted"; else
            echo "  FAIL  $name: refused a matching object: $out"; fails=$((fails + 1)); fi
    elif [ "$rc" != 0 ] && grep -q -- "$want" <<<"$out"; then
        echo "  ok    $name: refused, naming $want"
    else
        echo "  FAIL  $name: want a refusal naming $want, got exit $rc: $out"; fails=$((fails + 1))
    fi
}

deb61='CONFIG_RETPOLINE=y\nCONFIG_RETHUNK=y\nCONFIG_SLS=y'
deb612='CONFIG_MITIGATION_RETPOLINE=y\nCONFIG_MITIGATION_RETHUNK=y\nCONFIG_MITIGATION_SLS=y\nCONFIG_X86_KERNEL_IBT=y\nCONFIG_CALL_PADDING=y\nCONFIG_FUNCTION_PADDING_BYTES=16\nCONFIG_FUNCTION_ALIGNMENT=16'
thunked='f:\n\tcall __x86_indirect_thunk_rax\n\tjmp __x86_return_thunk'
padded='\t.p2align 4\n\t.fill 16,1,0x90\nf:\n\tendbr64\n\tcall __x86_indirect_thunk_rax\n\tjmp __x86_return_thunk'

echo "codegen.sh verify:"
case_ "6.1 config, thunked object" "$deb61" "$thunked" ""
case_ "6.1 config, bare ret" "$deb61" 'f:\n\tret\n\tint3' "CONFIG_RETHUNK=y"
case_ "6.12 config, bare ret" "$deb612" "${padded/jmp __x86_return_thunk/ret}" "CONFIG_MITIGATION_RETHUNK=y"
case_ "6.1 config, indirect call" "$deb61" 'f:\n\tcall *%rax\n\tjmp __x86_return_thunk' "CONFIG_RETPOLINE=y"
case_ "SLS only, ret without int3" 'CONFIG_MITIGATION_SLS=y' 'f:\n\tret' "CONFIG_MITIGATION_SLS=y"
case_ "SLS only, ret; int3" 'CONFIG_MITIGATION_SLS=y' 'f:\n\tret\n\tint3' ""
case_ "6.12 config, matching object" "$deb612" "$padded" ""
case_ "6.12 config, 6.1-style object (no endbr64)" "$deb612" '\t.p2align 4\n\t.fill 16,1,0x90\nf:\n\tcall __x86_indirect_thunk_rax\n\tjmp __x86_return_thunk' "CONFIG_X86_KERNEL_IBT=y"
case_ "6.12 config, no call padding" "$deb612" '\t.p2align 4\n\t.fill 16,1,0xcc\nf:\n\tendbr64\n\tjmp __x86_return_thunk' "CONFIG_CALL_PADDING=y"
case_ "6.12 config, misaligned entry" "$deb612" '\t.p2align 4\n\tnop\n\t.fill 16,1,0x90\nf:\n\tendbr64\n\tjmp __x86_return_thunk' "CONFIG_FUNCTION_ALIGNMENT=16"
[ "$fails" = 0 ] || { echo "codegen-test: $fails failed"; exit 1; }
echo "codegen-test: all passed"
