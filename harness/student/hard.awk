# hard.awk: a lesson skeleton (C) -> its hard-mode version, on stdin -> stdout.
#
# The rule: every function whose body holds a TODO(...) statement is what the student
# writes; its body becomes one TODO() naming it, plus the body's last top-level `return`
# line (so that it compiles); everything else stays as it is: the file's header comment
# (shapes, the PyTorch lines), the comment above each function (its contract), the
# signatures, the ready-made functions, types and includes. So the guiding `/* TODO: ... */`
# comments, the loops and the local variables of the skeleton's bodies go, and one
# skeleton makes both modes. Used by `make reset MODE=hard` (harness/student/reset.sh) and
# `make student-release MODE=hard`; kit_test.d/student_loop.sh proves that the hard
# skeletons compile and fail every test as todo.

# the line's braces, outside comments, strings and character constants: depth += opened - closed
function braces(line,    i, c, d) {
    d = 0
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (in_comment) { if (c == "*" && substr(line, i + 1, 1) == "/") { in_comment = 0; i++ } continue }
        if (c == "/" && substr(line, i + 1, 1) == "*") { in_comment = 1; i++; continue }
        if (c == "/" && substr(line, i + 1, 1) == "/") break
        if (c == "\"" || c == "'") { i = skip_quoted(line, i, c); continue }
        if (c == "{") d++
        if (c == "}") d--
    }
    return d
}

function skip_quoted(line, i, q,    c) {
    for (i++; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (c == "\\") i++
        else if (c == q) return i
    }
    return i
}

# the name of the function whose signature is sig: the identifier before its first "("
function func_name(sig,    head) {
    head = substr(sig, 1, index(sig, "(") - 1)
    sub(/[ \t*]+$/, "", head)
    sub(/.*[^A-Za-z0-9_]/, "", head)
    return head
}

function flush_body(    i) {
    if (!has_todo) {
        for (i = 1; i <= nbody; i++) print body[i]
        return
    }
    printf "    TODO(\"%s: write it from its contract above\");\n", name
    if (last_return != "") print last_return
    print body[nbody]
}

BEGIN { depth = 0; in_body = 0; sig = "" }

in_body {
    body[++nbody] = $0
    before = depth
    depth += braces($0)
    if (before == 1 && $0 ~ /^[ \t]*return[ \t(].*;[ \t]*$/) last_return = $0
    if ($0 ~ /^[ \t]*TODO\(/) has_todo = 1
    if (depth == 0) { flush_body(); in_body = 0; sig = "" }
    next
}

{
    print
    was_comment = in_comment
    d = braces($0)
    if (!was_comment && $0 !~ /^[ \t]*(\/\*|\*|\/\/|#)/) sig = sig " " $0
    if (depth == 0 && d == 1 && $0 ~ /\)[ \t]*\{[ \t]*$/ && sig ~ /\(/) {
        in_body = 1; depth = 1; nbody = 0; has_todo = 0; last_return = ""
        name = func_name(sig)
        next
    }
    depth += d
    if (depth == 0 && $0 ~ /(;|\}|\*\/)[ \t]*$|^[ \t]*$/) sig = ""
}
