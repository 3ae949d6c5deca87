# Splits a perf profile by the system call each sample was spent in: `perf script -F ip,sym`
# output (call chains leaf first, a blank line between samples) on standard input, one line
# out per call: its share of all samples, and that share of `cpu` (µs a connection). A sample
# is named by the libc wrapper that made the call, the frame above the kernel's entry, because
# unwinding sometimes loses the kernel's own `__x64_sys_` frame (`writev`'s, here). Work on the
# way back to user space (deferred closes, rescheduling) counts with the call it returned from;
# samples outside any call share one line.
BEGIN { RS = "" }
{
    lines = split($0, frame, "\n")
    call = "(outside system calls)"
    for (i = 1; i < lines; i++) {
        split(frame[i], leaf, " ")
        if (leaf[2] == "entry_SYSCALL_64_after_hwframe") {
            split(frame[i + 1], caller, " ")
            call = caller[2]
            break
        }
    }
    samples[call]++
    total++
}
END {
    for (call in samples) {
        share = samples[call] / total
        printf "%6.2f%% %6.1f µs  %s\n", 100 * share, cpu * share, call
    }
}
