"""Shell completion scripts (bash, zsh, fish) from the command line's own tree. Pure: no I/O.

cli.py describes every command as a :class:`CommandSpec` (read from its argparse parsers, so
the scripts never disagree with ``--help``); :func:`script` turns them into one shell's
completion script. Profile names are not in the script: it asks ``runas-async completion
--profiles`` each time (the AWS config files, read without botocore), so a profile added
later completes too.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence
from dataclasses import dataclass


class Value(enum.Enum):
    """What an option's value, or a command's positional argument, completes to."""

    NONE = "none"
    """Nothing to offer (a region, a number of seconds)."""
    PROFILE = "profile"
    FILE = "file"
    CHOICE = "choice"


@dataclass(frozen=True)
class OptionSpec:
    """One option: its spellings, and what its value completes to (None: a flag)."""

    names: tuple[str, ...]
    value: Value | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandSpec:
    """One command, by its words (``("ecr", "login")``): its subcommands or its arguments."""

    path: tuple[str, ...]
    subcommands: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    positional: Value = Value.NONE
    """What the first positional argument completes to."""
    positional_choices: tuple[str, ...] = ()


PROFILES_FLAG = "--profiles"
"""``runas-async completion --profiles``: the profile names, one a line (used by the scripts)."""

SHELLS = ("bash", "zsh", "fish")


def script(shell: str, prog: str, specs: Sequence[CommandSpec]) -> str:
    """The completion script of ``shell`` for ``prog``."""
    render = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]
    return render(prog, specs)


def _ident(prog: str) -> str:
    return "_" + "".join(c if c.isalnum() else "_" for c in prog)


def _words(words: Sequence[str]) -> str:
    return shlex.quote(" ".join(words))


def _posix_cases(specs: Sequence[CommandSpec]) -> tuple[str, str, str]:
    """The bodies of three ``case`` statements bash and zsh share: the subcommands and
    options of each command path, the options that take a value, and what each value and
    each first positional argument completes to ("@profile", "@file" or words)."""
    words, takes, values = [], [], []
    for spec in specs:
        path = " ".join(spec.path)
        offered = spec.subcommands or ()
        flags = [name for option in spec.options for name in option.names]
        words.append(f"        {shlex.quote(path)}) subs={_words(offered)}; opts={_words(flags)};;")
        for option in spec.options:
            if option.value is None:
                continue
            pattern = "|".join(shlex.quote(f"{path}:{name}") for name in option.names)
            takes.append(f"        {pattern}) return 0;;")
            values.append(f"        {pattern}) vals={_value(option.value, option.choices)};;")
        if spec.positional is not Value.NONE:
            pos = _value(spec.positional, spec.positional_choices)
            values.append(f"        {shlex.quote(path + ':')}) vals={pos};;")
    return "\n".join(words), "\n".join(takes), "\n".join(values)


def _value(kind: Value, choices: Sequence[str]) -> str:
    if kind is Value.PROFILE:
        return "@profile"
    if kind is Value.FILE:
        return "@file"
    return _words(choices)


_POSIX_COMMON = """\
# What the command line so far means: the command path, whether its first positional
# argument is given yet, and what the word being completed is (sets __ra_path, __ra_pos).
{fn}_takes_value() {{
    case "$1:$2" in
{takes}
    esac
    return 1
}}

{fn}_words() {{
    case "$1" in
{words}
        *) subs=''; opts='';;
    esac
}}

{fn}_values() {{
    vals=''
    case "$1" in
{values}
    esac
}}

{fn}_parse() {{
    # $@: the words before the one being completed, the program's name excluded
    __ra_path='' __ra_pos=0
    local skip=0 w subs opts
    for w in "$@"; do
        if [ "$skip" = 1 ]; then skip=0; continue; fi
        case "$w" in
            --) __ra_pos=2; continue;;
            --*=*) continue;;
            -*) if {fn}_takes_value "$__ra_path" "$w"; then skip=1; fi; continue;;
        esac
        {fn}_words "$__ra_path"
        case " $subs " in
            *" $w "*) __ra_path="${{__ra_path:+$__ra_path }}$w";;
            *) __ra_pos=$((__ra_pos + 1));;
        esac
    done
    __ra_after_option=$skip
}}
"""


def _bash(prog: str, specs: Sequence[CommandSpec]) -> str:
    fn = _ident(prog)
    words, takes, values = _posix_cases(specs)
    common = _POSIX_COMMON.format(fn=fn, words=words, takes=takes, values=values)
    return f"""\
# bash completion for {prog}; load with: source <({prog} completion bash)
{common}
{fn}_complete() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local subs opts vals key
    {fn}_parse "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"
    COMPREPLY=()
    if [ "$__ra_after_option" = 1 ]; then
        key="$__ra_path:$prev"
    elif [[ $cur == -* ]]; then
        {fn}_words "$__ra_path"
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    else
        {fn}_words "$__ra_path"
        if [ -n "$subs" ]; then
            COMPREPLY=($(compgen -W "$subs" -- "$cur"))
            return 0
        fi
        [ "$__ra_pos" = 0 ] || return 0
        key="$__ra_path:"
    fi
    {fn}_values "$key"
    case "$vals" in
        @profile) COMPREPLY=($(compgen -W "$("${{COMP_WORDS[0]}}" completion {PROFILES_FLAG} \\
                      2>/dev/null)" -- "$cur"));;
        @file) COMPREPLY=($(compgen -f -- "$cur"));;
        *) COMPREPLY=($(compgen -W "$vals" -- "$cur"));;
    esac
}}
complete -F {fn}_complete {prog}
"""


def _zsh(prog: str, specs: Sequence[CommandSpec]) -> str:
    fn = _ident(prog)
    words, takes, values = _posix_cases(specs)
    common = _POSIX_COMMON.format(fn=fn, words=words, takes=takes, values=values)
    return f"""\
#compdef {prog}
# zsh completion for {prog}; load with: source <({prog} completion zsh)
# (after compinit), or save as _{prog} in a directory of $fpath.
{common}
{fn}_complete() {{
    local cur=${{words[CURRENT]}} prev=${{words[CURRENT-1]}}
    local subs opts vals key
    {fn}_parse "${{(@)words[2,CURRENT-1]}}"
    if [[ $__ra_after_option == 1 ]]; then
        key="$__ra_path:$prev"
    elif [[ $cur == -* ]]; then
        {fn}_words "$__ra_path"
        compadd -- ${{=opts}}
        return
    else
        {fn}_words "$__ra_path"
        if [[ -n $subs ]]; then
            compadd -- ${{=subs}}
            return
        fi
        [[ $__ra_pos == 0 ]] || return 1
        key="$__ra_path:"
    fi
    {fn}_values "$key"
    case "$vals" in
        @profile) compadd -- ${{(f)"$(${{words[1]}} completion {PROFILES_FLAG} 2>/dev/null)"}};;
        @file) _files;;
        *) compadd -- ${{=vals}};;
    esac
}}
compdef {fn}_complete {prog}
"""


def _fish(prog: str, specs: Sequence[CommandSpec]) -> str:
    fn = _ident(prog).lstrip("_")
    lines = [
        f"# fish completion for {prog}; load with: {prog} completion fish | source",
        f"complete -c {prog} -f",
        f"function __{fn}_state --description 'the command path so far, and its positionals'",
        "    set -l words (commandline -opc)",
        "    set -e words[1]",
        "    set -l path ''",
        "    set -l positionals 0",
        "    set -l skip 0",
        "    for w in $words",
        "        if test $skip = 1",
        "            set skip 0",
        "            continue",
        "        end",
        "        switch $w",
        "            case '--'",
        "                set positionals 2",
        "                continue",
        "            case '--*=*'",
        "                continue",
        "            case '-*'",
        f'                if contains -- "$path:$w" $__{fn}_valued',
        "                    set skip 1",
        "                end",
        "                continue",
        "        end",
        '        set -l longer (string trim -- "$path $w")',
        f"        if contains -- $longer $__{fn}_paths",
        "            set path $longer",
        "        else",
        "            set positionals (math $positionals + 1)",
        "        end",
        "    end",
        "    echo $path",
        "    echo $positionals",
        "end",
        f"function __{fn}_at --argument-names want",
        f"    set -l state (__{fn}_state)",
        '    test "$state[1]" = "$want"',
        "end",
        f"function __{fn}_first --argument-names want",
        f"    set -l state (__{fn}_state)",
        '    test "$state[1]" = "$want"; and test "$state[2]" = 0',
        "end",
    ]
    paths = [" ".join(s.path) for s in specs if s.path]
    valued = [
        f"{' '.join(s.path)}:{name}"
        for s in specs
        for o in s.options
        if o.value
        for name in o.names
    ]
    lines.append(f"set -g __{fn}_paths {' '.join(shlex.quote(p) for p in paths)}")
    lines.append(f"set -g __{fn}_valued {' '.join(shlex.quote(v) for v in valued)}")
    profiles = f"({prog} completion {PROFILES_FLAG} 2>/dev/null)"
    for spec in specs:
        path = shlex.quote(" ".join(spec.path))
        at = f"-n {shlex.quote(f'__{fn}_at {path}')}"
        first = f"-n {shlex.quote(f'__{fn}_first {path}')}"
        if spec.subcommands:
            lines.append(f"complete -c {prog} {at} -a {_words(spec.subcommands)}")
        lines.extend(f"complete -c {prog} {at} {_fish_option(o, profiles)}" for o in spec.options)
        if spec.positional is Value.PROFILE:
            lines.append(f"complete -c {prog} {first} -a {shlex.quote(profiles)}")
        elif spec.positional is Value.CHOICE:
            lines.append(f"complete -c {prog} {first} -a {_words(spec.positional_choices)}")
    return "\n".join(lines) + "\n"


def _fish_option(option: OptionSpec, profiles: str) -> str:
    parts = []
    for name in option.names:
        if name.startswith("--"):
            parts.append(f"-l {name[2:]}")
        else:
            parts.append(f"-s {name[1:]}")
    if option.value is Value.PROFILE:
        parts.append(f"-x -a {shlex.quote(profiles)}")
    elif option.value is Value.FILE:
        parts.append("-r -F")
    elif option.value is Value.CHOICE:
        parts.append(f"-x -a {_words(option.choices)}")
    elif option.value is Value.NONE:
        parts.append("-x")
    return " ".join(parts)
