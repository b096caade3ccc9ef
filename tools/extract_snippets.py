#!/usr/bin/env python3
"""tools/extract_snippets.py: every C block in README.md and docs/*.md is checked.

ctest runs this script once per page (tests "docs_<page>", registered in
examples/CMakeLists.txt for README.md and every docs/*.md, so a new page or a
new block cannot escape). It finds each fenced block whose info string is
`c` (```c ... ```; other languages are not looked at: shell commands go in
```sh, pseudo-code and output in ```text or a bare fence) and handles it by
the marker on the line(s) right above the fence, an HTML comment that
rendered Markdown does not show:

  <!-- example: examples/NAME.c -->
      The block is a whole program and must equal examples/NAME.c byte for
      byte. The examples build compiles that file with the project's warnings
      and ctest runs it as "example_NAME" (CMake asks this script for the
      list, `--list-examples`, so every example a page shows is run). Refresh
      such blocks from their files with `--update-examples`.

  <!-- snippet: program -->
      A whole program (it defines main). Compiled against lamina.h, linked
      against the library in the build directory, and run from a scratch
      directory; it must exit with 0. An unmarked block that defines
      `main(` is treated the same.

  <!-- snippet: fragment -->
      Statements, as they would appear inside a function. Compiled as the
      body of `void lam_doc_fragment(void) { ... }` and linked (not run).
      The text around a fragment usually assumes some variables (ctx, x,
      vars, ...): declare them in a prelude, the lines between the marker's
      first line and `-->`, which go into the function before the block and
      are not shown to readers. Unused variables are allowed in fragments
      (-Wno-unused-variable -Wno-unused-but-set-variable); nothing else is:

          <!-- snippet: fragment
          lam_ctx *ctx = NULL;
          lam_tensor *x = NULL, *logits = NULL;
          -->

  <!-- snippet: declarations -->
      File-scope code: prototypes, types, helper functions. Compiled (and
      linked) after the headers; a prototype that differs from the real one
      in lamina.h is a "conflicting types" error, so documented signatures
      stay true. A prelude (as for fragments) goes before it at file scope.

Any other `c` block is an error naming the page and line: mark it, or move
it to a non-C fence. Every generated file starts with

    #include <lamina.h>  + <math.h> <stdbool.h> <stdint.h> <stdio.h> <stdlib.h> <string.h>

and is compiled with `CC -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra
-Werror -I<include>` and linked with `<liblamina> -lm -lOpenCL` (the OpenCL
ICD loader, which liblamina needs anyway, for pages that show interop with
lamina/opencl.h).

Usage:
  extract_snippets.py --cc CC --include DIR --lib PATH [--work DIR] PAGE.md...
      check the pages (what ctest runs)
  extract_snippets.py --lint PAGE.md...         markers and example files only, no compiler
  extract_snippets.py --list-examples PAGE.md... the example names the pages show, one a line
  extract_snippets.py --extract DIR PAGE.md...  write the generated sources to DIR
  extract_snippets.py --update-examples PAGE.md... rewrite example blocks from their files
  extract_snippets.py --self-test --cc CC --include DIR --lib PATH
      check that the checker itself rejects each kind of bad block (ctest "docs_checker")
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADERS = ["lamina.h", "math.h", "stdbool.h", "stdint.h", "stdio.h", "stdlib.h", "string.h"]
CFLAGS = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror"]
# A fragment shows how a value is made; that it is not used afterwards is the norm.
FRAGMENT_CFLAGS = ["-Wno-unused-variable", "-Wno-unused-but-set-variable"]
KINDS = ("program", "fragment", "declarations")
FENCE = re.compile(r"^(\s*)(`{3,})\s*([^\s`]*)")
MAIN = re.compile(r"\bint\s+main\s*\(")
EXAMPLE_PATH = re.compile(r"^examples/[A-Za-z0-9_]+\.c$")


def rel(path):
    """A page's name in messages: relative to the repository when inside it."""
    r = os.path.relpath(os.path.abspath(path), ROOT)
    return path if r.startswith("..") else r


class Block:
    def __init__(self, page, line, kind, code, prelude="", example=None, fence_span=None):
        self.page, self.line, self.kind = page, line, kind
        self.code, self.prelude, self.example = code, prelude, example
        self.fence_span = fence_span  # (first code line index, closing fence index)

    def where(self):
        return "%s:%d" % (rel(self.page), self.line)


def parse_marker(lines, fence_idx):
    """The marker comment ending on the line right above the fence, as
    (kind, argument, prelude) or None."""
    i = fence_idx - 1
    if i < 0 or not lines[i].rstrip().endswith("-->"):
        return None
    end = i
    while i >= 0 and "<!--" not in lines[i]:
        i -= 1
    if i < 0:
        return None
    text = "".join(lines[i:end + 1]).strip()
    m = re.match(r"<!--\s*(example|snippet)\s*:\s*(.*?)-->\s*$", text, re.S)
    if not m:
        return None
    word, rest = m.group(1), m.group(2)
    first, _, body = rest.partition("\n")
    arg = first.strip()
    if word == "example":
        return ("example", arg, "")
    return (arg, None, body)


def parse(page, errors):
    """Every `c` block of a page as a Block; problems are appended to errors."""
    with open(page, encoding="utf-8") as f:
        lines = f.readlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, lang = m.group(1), m.group(2), m.group(3)
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*" + ticks + r"\s*$", lines[j]):
            j += 1
        if j == len(lines):
            errors.append("%s:%d: unclosed code fence" % (rel(page), i + 1))
            break
        if lang.lower() == "c":
            code = "".join(l[len(indent):] if l.startswith(indent) else l for l in lines[i + 1:j])
            marker = parse_marker(lines, i)
            where = "%s:%d" % (rel(page), i + 1)
            span = (i + 1, j)
            if marker is None:
                if MAIN.search(code):
                    blocks.append(Block(page, i + 1, "program", code, fence_span=span))
                else:
                    errors.append("%s: unmarked C block: put <!-- snippet: fragment -->, "
                                  "<!-- snippet: declarations -->, <!-- snippet: program --> or "
                                  "<!-- example: examples/NAME.c --> on the line above the fence "
                                  "(see tools/extract_snippets.py), or use a non-C fence" % where)
            elif marker[0] == "example":
                path = marker[1]
                if not EXAMPLE_PATH.match(path):
                    errors.append("%s: example marker names %r; it must be examples/NAME.c" % (where, path))
                elif not os.path.isfile(os.path.join(ROOT, path)):
                    errors.append("%s: example file %s does not exist" % (where, path))
                else:
                    blocks.append(Block(page, i + 1, "example", code, example=path, fence_span=span))
            elif marker[0] in KINDS:
                blocks.append(Block(page, i + 1, marker[0], code, prelude=marker[2], fence_span=span))
            else:
                errors.append("%s: unknown snippet kind %r (one of %s)" % (where, marker[0], ", ".join(KINDS)))
        i = j + 1
    return blocks


def source(block):
    """The C file that checks a fragment, declarations or program block."""
    head = "".join("#include <%s>\n" % h for h in HEADERS)
    tag = "/* %s */\n" % block.where()
    if block.kind == "program":
        return tag + head + "#line %d \"%s\"\n" % (block.line + 1, block.where().split(":")[0]) + block.code
    body = block.code
    numbered = "#line %d \"%s\"\n" % (block.line + 1, block.where().split(":")[0]) + body
    if block.kind == "fragment":
        out = tag + head + "void lam_doc_fragment(void);\nvoid lam_doc_fragment(void) {\n"
        if block.prelude.strip():
            out += block.prelude.rstrip() + "\n"
        out += numbered + "}\n"
    else:  # declarations
        out = tag + head + (block.prelude.rstrip() + "\n" if block.prelude.strip() else "") + numbered
    # The fragment is linked, never run: main only takes its address.
    if block.kind == "fragment":
        out += "int main(void) {\n  void (*volatile f)(void) = lam_doc_fragment;\n  return f ? 0 : 1;\n}\n"
    elif not MAIN.search(block.code):
        out += "int main(void) { return 0; }\n"
    return out


def check_example(block):
    with open(os.path.join(ROOT, block.example), encoding="utf-8") as f:
        want = f.read()
    if block.code != want:
        return ["%s: block differs from %s (run tools/extract_snippets.py --update-examples %s)"
                % (block.where(), block.example, rel(block.page))]
    return []


def compile_and_run(block, n, args, work):
    name = "%s_%d" % (os.path.splitext(os.path.basename(block.page))[0], n)
    src = os.path.join(work, name + ".c")
    exe = os.path.join(work, name)
    with open(src, "w", encoding="utf-8") as f:
        f.write(source(block))
    libdir = os.path.dirname(os.path.abspath(args.lib))
    flags = CFLAGS + (FRAGMENT_CFLAGS if block.kind == "fragment" else [])
    cmd = [args.cc] + flags + ["-I" + args.include, src, "-o", exe, args.lib, "-lm", "-lOpenCL",
                                "-Wl,-rpath," + libdir]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        return ["%s: %s block does not compile (%s):\n%s" % (block.where(), block.kind, src, r.stdout)]
    if block.kind != "program":
        return []
    try:
        r = subprocess.run([exe], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return ["%s: program ran past %d s" % (block.where(), args.timeout)]
    if r.returncode != 0:
        return ["%s: program exited with %d:\n%s" % (block.where(), r.returncode, r.stdout[-4000:])]
    return []


def update_examples(page):
    with open(page, encoding="utf-8") as f:
        lines = f.readlines()
    errors = []
    blocks = [b for b in parse(page, errors) if b.kind == "example"]
    for b in reversed(blocks):  # from the end, so earlier spans stay valid
        with open(os.path.join(ROOT, b.example), encoding="utf-8") as f:
            text = f.read()
        if not text.endswith("\n"):
            text += "\n"
        first, close = b.fence_span
        lines[first:close] = text.splitlines(keepends=True)
    with open(page, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return len(blocks)


SELF_TESTS = [  # (page text, whether the check must pass)
    ("<!-- snippet: fragment\nlam_ctx *ctx = NULL;\n-->\n```c\nlam_ctx_free(ctx);\n```\n", True),
    ("<!-- snippet: declarations -->\n```c\nvoid lam_ctx_free(lam_ctx *ctx);\n```\n", True),
    ("<!-- snippet: program -->\n```c\nint main(void) { return lam_version(NULL, NULL, NULL) ? 0 : 1; }\n```\n", True),
    ("```sh\necho not C\n```\n```text\nnot C either\n```\n", True),
    ("```c\nlam_ctx_free(NULL);\n```\n", False),                       # unmarked, no main
    ("<!-- snippet: frag -->\n```c\nint x;\n```\n", False),               # unknown kind
    ("<!-- snippet: fragment -->\n```c\nlam_ctx_free(1, 2);\n```\n", False),  # does not compile
    ("<!-- snippet: fragment -->\n```c\nint x = 1\n```\n", False),
    ("<!-- snippet: declarations -->\n```c\nvoid lam_ctx_free(int ctx);\n```\n", False),  # signature drifted
    ("<!-- snippet: fragment -->\n```c\nlam_no_such_function();\n```\n", False),
    ("```c\nint main(void) { return 3; }\n```\n", False),              # program fails
    ("<!-- example: examples/quickstart.c -->\n```c\nint main(void) { return 0; }\n```\n", False),
    ("<!-- example: examples/no_such_example.c -->\n```c\nint x;\n```\n", False),
    ("```c\nint x;\n", False),                                           # unclosed fence
]


def self_test(args):
    work = args.work or tempfile.mkdtemp(prefix="lamina-docs-selftest-")
    os.makedirs(work, exist_ok=True)
    bad = 0
    for n, (text, should_pass) in enumerate(SELF_TESTS, 1):
        page = os.path.join(work, "case%d.md" % n)
        with open(page, "w", encoding="utf-8") as f:
            f.write("# case %d\n\n" % n + text)
        cmd = [sys.executable, os.path.abspath(__file__), "--cc", args.cc, "--include", args.include,
               "--lib", args.lib, "--work", os.path.join(work, "case%d" % n), page]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if (r.returncode == 0) != should_pass:
            bad += 1
            print("self-test case %d should %s:\n%s\n%s" % (n, "pass" if should_pass else "fail", text, r.stdout))
    print("self-test: %d of %d cases as expected" % (len(SELF_TESTS) - bad, len(SELF_TESTS)))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--include", default=os.path.join(ROOT, "include"))
    ap.add_argument("--lib", help="liblamina to link (the shared library in the build dir)")
    ap.add_argument("--work", help="directory for generated files (default: a temporary one)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds a program may run")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--lint", action="store_true")
    mode.add_argument("--list-examples", action="store_true")
    mode.add_argument("--extract", metavar="DIR")
    mode.add_argument("--update-examples", action="store_true")
    mode.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        if not args.lib:
            ap.error("--self-test needs --lib")
        return self_test(args)
    if not args.pages:
        ap.error("no pages given")

    if args.update_examples:
        for p in args.pages:
            print("%s: %d example blocks refreshed" % (p, update_examples(p)))
        return 0

    errors = []
    pages = [(p, parse(p, errors)) for p in args.pages]
    if args.list_examples:
        names = sorted({os.path.splitext(os.path.basename(b.example))[0]
                        for _, bl in pages for b in bl if b.kind == "example"})
        print("\n".join(names))
        return 1 if errors else 0
    if args.extract:
        os.makedirs(args.extract, exist_ok=True)
        for p, bl in pages:
            for n, b in enumerate(bl, 1):
                if b.kind != "example":
                    name = "%s_%d.c" % (os.path.splitext(os.path.basename(p))[0], n)
                    with open(os.path.join(args.extract, name), "w", encoding="utf-8") as f:
                        f.write(source(b))

    for p, bl in pages:
        for b in bl:
            if b.kind == "example":
                errors += check_example(b)
    if not args.lint and not args.extract:
        if not args.lib:
            ap.error("--lib is required to compile (or use --lint)")
        work = args.work or tempfile.mkdtemp(prefix="lamina-docs-")
        os.makedirs(work, exist_ok=True)
        for p, bl in pages:
            for n, b in enumerate(bl, 1):
                if b.kind != "example":
                    errors += compile_and_run(b, n, args, work)

    for p, bl in pages:
        counts = {}
        for b in bl:
            counts[b.kind] = counts.get(b.kind, 0) + 1
        summary = ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())) or "no C blocks"
        print("%s: %s" % (rel(p), summary), flush=True)
    for e in errors:
        print("FAIL " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
