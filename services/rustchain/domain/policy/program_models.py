"""What the programs of the default policy do with their arguments: one model per program.

A model lists the options that matter to a policy (those that run programs, read or write files,
or reach beneath their operands) and says what the program's operands are. Every other option
is a flag or a text value: nothing the program touches outside its standard streams. How options
are written (GNU `getopt_long`, or `find`'s expression words) is the verifier's business
(`program_rules`); this module is only the facts, written to be read by an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Effect(StrEnum):
    """What an option does beyond the program's standard streams."""

    TEXT = "text"  # a flag, or a value that is not a file name
    READS = "reads"  # its value names a file the program reads
    WRITES = "writes"  # its value names a file or folder the program creates or changes
    RUNS = "runs"  # it runs another program: refused
    BENEATH = "beneath"  # it reads or deletes all under an operand, denied paths too: refused
    NAMED_INSIDE = "named inside"  # it reads files whose names are in a file's content: refused


class Operands(StrEnum):
    """What a program's operands (its words that are not options) name."""

    TEXT = "text"  # texts (date's format, tr's sets); still checked like paths when they look so
    READ = "read"  # files it reads
    WRITE = "write"  # files or folders it creates or changes
    LAST_WRITTEN = "last written"  # files it reads, except the last, which it writes (cp)
    SECOND_WRITTEN = "second written"  # input, then output (uniq)


@dataclass(frozen=True)
class Option:
    """One option under all its names: `-o` (short), `--output` (long), `-fprint` (find)."""

    names: tuple[str, ...]
    effect: Effect = Effect.TEXT
    # Whether it takes a value: attached (`-oF`, `--output=F`) or the next word (`-o F`).
    value: bool = False
    why: str = ""


@dataclass(frozen=True)
class ProgramModel:
    """A program: the options a policy cares about, and what its operands name."""

    name: str
    operands: Operands
    options: tuple[Option, ...] = ()
    # `getopt`: GNU option parsing (clusters, attached and split values, long prefixes, `--`,
    # options anywhere among operands); `find`: whole words only, no clusters, no prefixes.
    syntax: str = "getopt"
    # Prints its arguments and touches nothing (echo, printf): why the default policy lists it
    # in `text_only_programs`, whose programs no argument rule applies to.
    prints_only: bool = False


def _o(*names: str, effect: Effect = Effect.TEXT, value: bool = False, why: str = "") -> Option:
    return Option(names, effect, value, why)


def _v(*names: str) -> Option:
    """A text-valued option (listed so that its value is never read as options)."""
    return Option(names, Effect.TEXT, True)


_T, _R, _W = Effect.TEXT, Effect.READS, Effect.WRITES
_LS_OPTIONS = (
    _v("-I", "--ignore"),
    _v("-w", "--width"),
    _v("-T", "--tabsize"),
    _o("--hide", "--block-size", "--format", "--time-style", "--quoting-style", value=True),
    _o("--indicator-style", "--sort", "--time", value=True),
)
_HEAD_TAIL = (_v("-n", "--lines"), _v("-c", "--bytes"))
_FIND_TESTS = (
    *("-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex"),
    *("-lname", "-ilname", "-type", "-xtype", "-maxdepth", "-mindepth", "-mtime", "-atime"),
    *("-ctime", "-mmin", "-amin", "-cmin", "-used", "-size", "-perm", "-user", "-group", "-uid"),
    *("-gid", "-inum", "-links", "-regextype", "-fstype", "-printf", "-context", "-D"),
)

MODELS: dict[str, ProgramModel] = {
    model.name: model
    for model in (
        ProgramModel("echo", Operands.TEXT, prints_only=True),
        ProgramModel("printf", Operands.TEXT, prints_only=True),
        ProgramModel("true", Operands.TEXT),
        ProgramModel("false", Operands.TEXT),
        ProgramModel("pwd", Operands.TEXT),
        ProgramModel(
            "date",
            Operands.TEXT,
            (
                _o("-f", "--file", effect=_R, value=True, why="reads dates from a file"),
                _o("-r", "--reference", effect=_R, value=True, why="reads a file's time"),
                _v("-d", "--date"),
                _v("-s", "--set"),
                _o("--rfc-3339", value=True),
            ),
        ),
        ProgramModel("ls", Operands.READ, _LS_OPTIONS),
        ProgramModel("dir", Operands.READ, _LS_OPTIONS),
        ProgramModel("cat", Operands.READ),
        ProgramModel("head", Operands.READ, _HEAD_TAIL),
        ProgramModel(
            "tail",
            Operands.READ,
            (*_HEAD_TAIL, _v("-s", "--sleep-interval"), _o("--pid", "--max-unchanged-stats")),
        ),
        ProgramModel(
            "wc",
            Operands.READ,
            # The files named in the list are not checked: wc prints only their counts.
            (_o("--files0-from", effect=_R, value=True, why="reads file names from a file"),),
        ),
        ProgramModel(
            "sort",
            Operands.READ,
            (
                _o("-o", "--output", effect=_W, value=True, why="writes its output to a file"),
                _o("-T", "--temporary-directory", effect=_W, value=True, why="writes temporaries"),
                _o("--compress-program", effect=Effect.RUNS, value=True, why="runs a program"),
                _o("--files0-from", effect=Effect.NAMED_INSIDE, value=True, why="prints them"),
                _o("--random-source", effect=_R, value=True),
                _v("-k", "--key"),
                _v("-t", "--field-separator"),
                _v("-S", "--buffer-size"),
                _o("--parallel", "--batch-size", "--sort", value=True),
            ),
        ),
        ProgramModel(
            "uniq",
            Operands.SECOND_WRITTEN,
            (_v("-f", "--skip-fields"), _v("-s", "--skip-chars"), _v("-w", "--check-chars")),
        ),
        ProgramModel(
            "cut",
            Operands.READ,
            (_v("-b", "--bytes"), _v("-c", "--characters"), _v("-d", "--delimiter")),
        ),
        ProgramModel("tr", Operands.TEXT),
        ProgramModel(
            "grep",
            Operands.READ,
            (
                _o("-f", "--file", "--exclude-from", effect=_R, value=True, why="reads patterns"),
                _o("-r", "-R", "--recursive", "--dereference-recursive", effect=Effect.BENEATH),
                _o("-d", "--directories", effect=Effect.BENEATH, value=True),
                _v("-e", "--regexp"),
                _v("-m", "--max-count"),
                _v("-A", "--after-context"),
                _v("-B", "--before-context"),
                _v("-C", "--context"),
                _v("-D", "--devices"),
                _o("--include", "--exclude", "--exclude-dir", "--label", "--binary-files"),
            ),
        ),
        ProgramModel(
            "find",
            Operands.READ,
            (
                _o("-exec", "-execdir", "-ok", "-okdir", effect=Effect.RUNS, why="runs a program"),
                _o("-delete", effect=Effect.BENEATH, why="deletes what it finds, denied paths too"),
                _o("-fprint", "-fprint0", "-fls", "-fprintf", effect=_W, value=True),
                _o("-newer", "-anewer", "-cnewer", "-samefile", effect=_R),
                _o("-files0-from", effect=Effect.NAMED_INSIDE, value=True),
                _o(*_FIND_TESTS, value=True),
            ),
            syntax="find",
        ),
        ProgramModel(
            "diff",
            Operands.READ,
            (
                _o("--from-file", "--to-file", effect=_R, value=True, why="compares with a file"),
                _o("-X", "--exclude-from", effect=_R, value=True, why="reads patterns"),
                _o("-r", "--recursive", effect=Effect.BENEATH, why="reads every file beneath"),
                _o("-l", "--paginate", effect=Effect.RUNS, why="runs pr"),
                _v("-x", "--exclude"),
                _v("-I", "--ignore-matching-lines"),
                _v("-F", "--show-function-line"),
                _v("-S", "--starting-file"),
                _v("-D", "--ifdef"),
                _v("-W", "--width"),
                _v("-C", "--context"),
                _v("-U", "--unified"),
                _o("--label", "--tabsize", "--horizon-lines", "--line-format", value=True),
            ),
        ),
        ProgramModel("mkdir", Operands.WRITE, (_v("-m", "--mode"),)),
        ProgramModel(
            "touch",
            Operands.WRITE,
            (
                _o("-r", "--reference", effect=_R, value=True, why="reads a file's times"),
                _v("-d", "--date"),
                _v("-t"),
            ),
        ),
        ProgramModel(
            "cp",
            Operands.LAST_WRITTEN,
            (
                _o("-t", "--target-directory", effect=_W, value=True, why="writes into a folder"),
                _v("-S", "--suffix"),
                _o("--no-preserve", "--sparse", value=True),
            ),
        ),
        ProgramModel(
            "mv",
            Operands.WRITE,
            (
                _o("-t", "--target-directory", effect=_W, value=True, why="writes into a folder"),
                _v("-S", "--suffix"),
            ),
        ),
        ProgramModel(
            "chmod",
            Operands.WRITE,
            (_o("--reference", effect=_R, value=True, why="reads a file's mode"),),
        ),
    )
}


def program_model(program: str) -> ProgramModel | None:
    """The model of a program named by its bare name (`sort`, not `/usr/bin/sort`)."""
    return MODELS.get(program)
