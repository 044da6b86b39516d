# Reads a valgrind memcheck log and prints the error records whose first frame
# outside the allocator is dptrain's own code (a dpt_ function, main, or a
# frame in src/); exits 1 if there is any. Errors inside MPI, HDF5, OpenMP or
# libc (reached from our calls) are not ours and are counted only.
function flush_record() {
    if (kind != "" && first != "") {
        if (first ~ /(dpt_|: main |\/src\/|\(src\/)/) { ours++; print "OURS: " kind; print "      " first }
        else others++
    }
    kind = ""; first = ""
}
/^==[0-9]+== $/ { flush_record(); next }
/^==[0-9]+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination)/ ||
/^==[0-9]+== .*definitely lost in loss record/ {
    flush_record(); sub(/^==[0-9]+== /, ""); kind = $0; next
}
kind != "" && first == "" && /^==[0-9]+==    (at|by) / {
    if ($0 ~ /(malloc|calloc|realloc|aligned_alloc|posix_memalign|memalign|strdup|operator new|vgpreload)/) next
    first = $0
}
END { flush_record(); printf "valgrind: %d error record(s) in our code, %d in libraries\n", ours, others; exit ours > 0 }
