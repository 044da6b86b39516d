#include "h5util.h"

#include <errno.h>
#include <sys/wait.h>
#include <signal.h>
#include <poll.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dptrain/log.h"

void dpt_h5_init(void)
{
    static int done;
    if (!done) {
        /* No HDF5 clean-up at exit: after a failed close (disk full) HDF5
         * keeps the file in its tables and its exit handler crashes on it
         * (seen with 1.10.8). Files are flushed or discarded explicitly. */
        H5dont_atexit();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

/* HDF5 1.10.7 and later lock every file they open (flock) and fail the
 * open where the file system refuses the lock: ENOSYS (Lustre mounted
 * noflock) is let pass by default, ENOLCK (NFS without its lock daemon) is
 * not. dptrain needs none of those locks (models, checkpoints and datasets
 * are written to a temporary file and renamed, a trace by the one process
 * that creates it; inputs are only read), so where
 * the user has not chosen (HDF5_USE_FILE_LOCKING) an open that failed is
 * tried once more without them, with one warning. Returns the fapl for that
 * try, or H5I_INVALID_HID for none. */
static hid_t unlocked_fapl(hid_t base)
{
#if H5_VERSION_GE(1, 10, 7)
    if (getenv("HDF5_USE_FILE_LOCKING"))
        return H5I_INVALID_HID;
    hid_t fapl = base == H5P_DEFAULT ? H5Pcreate(H5P_FILE_ACCESS) : H5Pcopy(base);
    if (fapl >= 0 && H5Pset_file_locking(fapl, 0, 1) < 0) {
        H5Pclose(fapl);
        fapl = H5I_INVALID_HID;
    }
    return fapl;
#else
    (void)base;
    return H5I_INVALID_HID;
#endif
}

static void warn_unlocked(const char *path)
{
    static int warned;
    if (!warned++)
        dpt_log_warn("%s: the file system refused HDF5's file lock; opened without it (dptrain does not need it; "
                     "HDF5_USE_FILE_LOCKING=FALSE does the same without this warning)", path);
}

/* Opens PATH read-only, or creates it (truncating) where create is set. */
static hid_t open_or_create(const char *path, int create, hid_t fapl)
{
    return create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : H5Fopen(path, H5F_ACC_RDONLY, fapl);
}

/* open_or_create, and where that fails once more without HDF5's file locks
 * (above). */
static hid_t open_retrying(const char *path, int create, hid_t fapl)
{
    hid_t f = open_or_create(path, create, fapl);
    hid_t u = f < 0 ? unlocked_fapl(fapl) : H5I_INVALID_HID;
    if (u >= 0) {
        f = open_or_create(path, create, u);
        H5Pclose(u);
        if (f >= 0)
            warn_unlocked(path);
    }
    return f;
}

hid_t dpt_h5_fopen_read(const char *path, hid_t fapl) { return open_retrying(path, 0, fapl); }

hid_t dpt_h5_fcreate(const char *path, hid_t fapl) { return open_retrying(path, 1, fapl); }

DptStatus dpt_h5_open_read(const char *path, hid_t *f)
{
    struct stat sb;
    dpt_h5_init();
    *f = H5I_INVALID_HID;
    if (stat(path, &sb) != 0)
        return dpt_err(DPT_EINPUT, "%s: cannot open (%s)", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return dpt_err(DPT_EINPUT, "%s: is a directory; expected an HDF5 file", path);
    if (sb.st_size == 0)
        return dpt_err(DPT_EINPUT, "%s: empty file; expected an HDF5 file", path);
    if (access(path, R_OK) != 0)
        return dpt_err(DPT_EINPUT, "%s: cannot read (%s)", path, strerror(errno));
    dpt_h5_net_file(path, 0);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0)
        return dpt_err(DPT_EINPUT, "%s: not an HDF5 file", path);
    *f = dpt_h5_fopen_read(path, H5P_DEFAULT);
    if (*f < 0)
        return dpt_err(DPT_EINPUT, "%s: cannot open as HDF5 (truncated or damaged?)", path);
    return DPT_OK;
}

DptStatus dpt_h5_open_image(const void *buf, size_t len, hid_t *f)
{
    dpt_h5_init();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 20, 0);
    H5Pset_file_image(fapl, (void *)buf, len);
    static unsigned serial;
    char name[64];
    snprintf(name, sizeof name, "dptrain-image-%u", serial++);
    dpt_h5_net_file("file image", 0);
    *f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (*f < 0)
        return dpt_err(DPT_EINPUT, "file image: not a readable HDF5 file");
    return DPT_OK;
}

int dpt_h5_exists(hid_t loc, const char *path)
{
    char buf[512];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, path, len + 1);
    for (size_t i = 0; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (i > 0 && H5Lexists(loc, buf, H5P_DEFAULT) <= 0)
                return 0;
            if (i > 0 && c == '/' && H5Oexists_by_name(loc, buf, H5P_DEFAULT) <= 0)
                return 0;
            buf[i] = c;
        }
    }
    return H5Oexists_by_name(loc, path, H5P_DEFAULT) > 0;
}

int dpt_h5_is_number(hid_t obj, H5T_class_t cls)
{
    H5I_type_t kind = H5Iget_type(obj);
    hid_t t = kind == H5I_DATASET ? H5Dget_type(obj) : kind == H5I_ATTR ? H5Aget_type(obj) : H5I_INVALID_HID;
    if (t < 0)
        return 0;
    size_t sz = H5Tget_size(t);
    int ok = H5Tget_class(t) == cls && sz >= 1 && sz <= 8;
    H5Tclose(t);
    return ok;
}

/* Can H5Dread read d without reading outside its own buffers? Two damages
 * HDF5 1.10 does not catch itself, both found by fuzz_hdf5:
 * - a compact dataset whose stored bytes are fewer than its extent times its
 *   type's size (none at all: H5Dread copies from a null pointer); its bytes
 *   must be exactly that many;
 * - a chunk that passed through fletcher32 shorter than the checksum's 4
 *   bytes. Chunks are looked up by their coordinates (a B-tree search each;
 *   by index, HDF5 1.10 walks the index for every chunk). */
static int storage_sound(hid_t d)
{
    hid_t dcpl = H5Dget_create_plist(d);
    hid_t sp = H5Dget_space(d);
    int ok = dcpl >= 0 && sp >= 0;
    int fl = -1;
    H5D_layout_t layout = ok ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    if (ok && layout == H5D_COMPACT) {
        hid_t t = H5Dget_type(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        size_t sz = t >= 0 ? H5Tget_size(t) : 0;
        ok = t >= 0 && n >= 0 && sz > 0 && (hsize_t)n <= HSIZE_UNDEF / sz &&
             H5Dget_storage_size(d) == (hsize_t)n * sz;
        if (t >= 0)
            H5Tclose(t);
    }
    if (ok && layout == H5D_CHUNKED) {
        int nf = H5Pget_nfilters(dcpl);
        for (int i = 0; i < nf; i++) {
            unsigned flags = 0, cd[8], conf = 0;
            size_t ncd = 8;
            if (H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, &conf) == H5Z_FILTER_FLETCHER32)
                fl = i;
        }
    }
    if (ok && fl >= 0) {
        hsize_t dims[H5S_MAX_RANK], cdims[H5S_MAX_RANK], at[H5S_MAX_RANK];
        int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
        ok = rank >= 1 && H5Pget_chunk(dcpl, rank, cdims) == rank;
        int empty = 0;
        for (int i = 0; ok && i < rank; i++) {
            ok = cdims[i] > 0;
            empty |= dims[i] == 0;
            at[i] = 0;
        }
        while (ok && !empty) {
            unsigned mask = 0;
            haddr_t addr = HADDR_UNDEF;
            hsize_t size = 0;
            if (H5Dget_chunk_info_by_coord(d, at, &mask, &addr, &size) < 0)
                ok = 0;
            else if (addr != HADDR_UNDEF && !(fl < 32 && (mask >> fl) & 1u) && size < 4)
                ok = 0;
            int i = rank - 1; /* the next chunk, last coordinate fastest */
            while (i >= 0 && (at[i] += cdims[i]) >= dims[i])
                at[i--] = 0;
            if (i < 0)
                break;
        }
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return ok;
}

herr_t dpt_h5_read_all(hid_t d, hid_t mt, void *buf)
{
    if (!storage_sound(d))
        return -1;
    return H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

static DptStatus read_attr(hid_t obj, const char *name, hid_t mem_type, void *v, hssize_t want)
{
    DptStatus st = DPT_OK;
    hid_t a = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    if (H5Aexists(obj, name) <= 0)
        return dpt_err(DPT_EINPUT, "missing attribute '%s'", name);
    a = H5Aopen(obj, name, H5P_DEFAULT);
    sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    if (a < 0 || sp < 0 || H5Sget_simple_extent_npoints(sp) != want ||
        !dpt_h5_is_number(a, H5Tget_class(mem_type)) || H5Aread(a, mem_type, v) < 0)
        st = dpt_err(DPT_EINPUT, "attribute '%s' is unreadable or has the wrong size or type", name);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return st;
}

DptStatus dpt_h5_read_attr_double(hid_t obj, const char *name, double *v)
{
    return read_attr(obj, name, H5T_NATIVE_DOUBLE, v, 1);
}

DptStatus dpt_h5_read_attr_int64(hid_t obj, const char *name, int64_t *v)
{
    return read_attr(obj, name, H5T_NATIVE_INT64, v, 1);
}

DptStatus dpt_h5_read_attr_ints(hid_t obj, const char *name, int *v, int cap, int *n)
{
    DptStatus st = DPT_OK;
    hid_t a = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    if (H5Aexists(obj, name) <= 0)
        return dpt_err(DPT_EINPUT, "missing attribute '%s'", name);
    a = H5Aopen(obj, name, H5P_DEFAULT);
    sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (np < 1 || np > cap) {
        st = dpt_err(DPT_EINPUT, "attribute '%s' has %lld values; expected 1..%d", name, (long long)np, cap);
    } else if (!dpt_h5_is_number(a, H5T_INTEGER)) {
        st = dpt_err(DPT_EINPUT, "attribute '%s' is not an integer of 1 to 8 bytes", name);
    } else if (H5Aread(a, H5T_NATIVE_INT, v) < 0) {
        st = dpt_err(DPT_EINPUT, "attribute '%s' is unreadable", name);
    } else {
        *n = (int)np;
    }
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return st;
}

/* Reads the variable-length string attribute a (memory type mt) in a child
 * process and takes the text back through a pipe. Variable-length strings
 * live in the file's global heap, which has no checksum, and HDF5 1.10 can
 * loop forever on a damaged one (found by fuzzing): the parent never reads
 * the heap itself, and gives the child VLEN_TIMEOUT_S seconds. */
enum { VLEN_TIMEOUT_S = 5 };

static DptStatus read_vlen_isolated(hid_t a, hid_t mt, const char *name, char *buf, size_t len, size_t count)
{
    int fds[2];
    if (pipe(fds) != 0)
        return dpt_err(DPT_EINTERNAL, "attribute '%s': cannot create a pipe (%s)", name, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return dpt_err(DPT_EINTERNAL, "attribute '%s': cannot fork (%s)", name, strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        /* A damaged heap may crash the library here: die quietly, the parent
         * reports it (the handlers inherited from MPI, a sanitizer or the
         * crash net would print a backtrace or abort the job). */
        dpt_h5_net_default();
        /* count strings, each sent with its terminating NUL */
        char **s = calloc(count, sizeof *s);
        char ok = s && H5Aread(a, mt, s) >= 0 ? 1 : 0;
        if (write(fds[1], &ok, 1) != 1)
            _exit(1);
        for (size_t i = 0; ok && i < count; i++) {
            const char *v = s[i] ? s[i] : "";
            size_t n = strnlen(v, len - 1) + 1;
            if (write(fds[1], v, n) != (ssize_t)n)
                _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    char ok = 0, first = 1;
    DptStatus st = DPT_OK;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    for (;;) {
        int pr = poll(&pfd, 1, VLEN_TIMEOUT_S * 1000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            kill(pid, SIGKILL);
            st = dpt_err(DPT_EINPUT, "attribute '%s' is a variable-length string whose storage is damaged (reading it "
                         "did not finish in %d s)", name, VLEN_TIMEOUT_S);
            break;
        }
        char chunk[256];
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r <= 0)
            break;
        size_t i = 0;
        if (first) {
            ok = chunk[0];
            first = 0;
            i = 1;
        }
        for (; i < (size_t)r && got + 1 < len; i++)
            buf[got++] = chunk[i];
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    buf[got] = '\0';
    if (st == DPT_OK && !ok)
        st = dpt_err(DPT_EINPUT, "attribute '%s' (a variable-length string) is unreadable", name);
    return st;
}

DptStatus dpt_h5_read_attr_string(hid_t obj, const char *name, char *buf, size_t len)
{
    DptStatus st = DPT_OK;
    hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0)
        return dpt_err(DPT_EINPUT, "missing attribute '%s'", name);
    a = H5Aopen(obj, name, H5P_DEFAULT);
    t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    if (t < 0 || H5Tget_class(t) != H5T_STRING) {
        st = dpt_err(DPT_EINPUT, "attribute '%s' is not a string", name);
        goto done;
    }
    if (H5Tis_variable_str(t) > 0) {
        /* h5py's default for a Python str */
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        st = read_vlen_isolated(a, mt, name, buf, len, 1);
    } else {
        size_t sz = H5Tget_size(t);
        char *tmp = calloc(sz + 1, 1);
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz + 1);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (!tmp || H5Aread(a, mt, tmp) < 0) {
            free(tmp);
            st = dpt_err(DPT_EINPUT, "attribute '%s' is unreadable", name);
            goto done;
        }
        snprintf(buf, len, "%s", tmp);
        free(tmp);
    }
done:
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return st;
}

DptStatus dpt_h5_read_attr_strings(hid_t obj, const char *name, char *buf, size_t len, size_t *n)
{
    DptStatus st = DPT_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID, sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    hid_t mt = H5I_INVALID_HID;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t sz = t >= 0 ? H5Tget_size(t) : 0;
    memset(buf, 0, len);
    *n = 0;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || np < 1) {
        st = dpt_err(DPT_EINPUT, "attribute '%s': expected one or more strings", name);
    } else if (H5Tis_variable_str(t) > 0) {
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        st = read_vlen_isolated(a, mt, name, buf, len, (size_t)np);
    } else if ((size_t)np > len / (sz + 1)) {
        st = dpt_err(DPT_EINPUT, "attribute '%s': %lld strings of %zu bytes are more than %zu bytes", name,
                     (long long)np, sz, len);
    } else {
        char *raw = calloc((size_t)np, sz);
        if (!raw || H5Aread(a, t, raw) < 0)
            st = dpt_err(DPT_EINPUT, "attribute '%s' is unreadable", name);
        for (size_t i = 0, o = 0; st == DPT_OK && i < (size_t)np; i++) {
            size_t l = strnlen(raw + i * sz, sz);
            memcpy(buf + o, raw + i * sz, l);
            o += l + 1;
        }
        free(raw);
    }
    /* Count what arrived: every string ends in a NUL inside buf. */
    if (st == DPT_OK) {
        size_t got = 0;
        for (size_t o = 0; got < (size_t)np && o < len; o += strlen(buf + o) + 1)
            got++;
        if (got < (size_t)np || buf[len - 1] != '\0')
            st = dpt_err(DPT_EINPUT, "attribute '%s': %lld strings do not fit %zu bytes", name, (long long)np, len);
        *n = (size_t)np;
    }
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return st;
}

static DptStatus write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, hsize_t n,
                            const void *v, const char *file)
{
    DptStatus st = DPT_OK;
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mem_type, v) < 0)
        st = dpt_err(DPT_EOUTPUT, "%s: cannot write attribute '%s'", file, name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return st;
}

DptStatus dpt_h5_write_attr_double(hid_t obj, const char *name, double v, const char *file)
{
    return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v, file);
}

DptStatus dpt_h5_write_attr_int64(hid_t obj, const char *name, int64_t v, const char *file)
{
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v, file);
}

DptStatus dpt_h5_write_attr_ints(hid_t obj, const char *name, const int *v, int n, const char *file)
{
    return write_attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, (hsize_t)n, v, file);
}

DptStatus dpt_h5_write_attr_string(hid_t obj, const char *name, const char *v, const char *file)
{
    /* Fixed-length (stored in the object header, not the global heap). */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    DptStatus st = write_attr(obj, name, t, t, 0, v, file);
    H5Tclose(t);
    return st;
}

hid_t dpt_h5_create_fapl(void)
{
    /* The 1.8 file format or later: checksummed metadata (superblock v2,
     * object headers v2), so that damaged metadata fails to load instead of
     * being parsed. */
    dpt_h5_init();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    return fapl;
}

DptStatus dpt_h5_write_dataset(hid_t loc, const char *name, hid_t mem_type, int rank, const hsize_t *dims,
                               const void *data, int compress, const char *file)
{
    DptStatus st = DPT_OK;
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ftype = H5Tget_class(mem_type) == H5T_FLOAT ? H5T_IEEE_F32LE
                  : H5Tget_size(mem_type) == 1        ? H5T_STD_U8LE
                  : H5Tget_size(mem_type) == 8        ? H5T_STD_I64LE
                                                      : H5T_STD_I32LE;
    size_t elem = H5Tget_size(mem_type);
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    if (total > 0) {
        /* Chunks of about 1 MiB, whole rows where a row fits. */
        hsize_t chunk[8];
        hsize_t row = 1;
        for (int i = 1; i < rank; i++) {
            chunk[i] = dims[i] > 262144 ? 262144 : dims[i];
            row *= chunk[i];
        }
        hsize_t rows = (1u << 20) / (row * elem);
        chunk[0] = rows < 1 ? 1 : rows > dims[0] ? dims[0] : rows;
        H5Pset_chunk(dcpl, rank, chunk);
        if (compress)
            H5Pset_deflate(dcpl, 1);
        H5Pset_fletcher32(dcpl);
    }
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || (total > 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        st = dpt_err(DPT_EOUTPUT, "%s: cannot write dataset '%s' (disk full?)", file, name);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return st;
}

DptStatus dpt_h5_create_tmp(const char *out, char *tmp, size_t tmp_len, hid_t *f)
{
    dpt_h5_init();
    if ((size_t)snprintf(tmp, tmp_len, "%s.tmp.%ld", out, (long)getpid()) >= tmp_len)
        return dpt_err(DPT_EOUTPUT, "%s: path too long", out);
    dpt_h5_net_file(out, 1);
    hid_t fapl = dpt_h5_create_fapl();
    *f = dpt_h5_fcreate(tmp, fapl);
    H5Pclose(fapl);
    if (*f < 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", out);
        return dpt_err(DPT_EOUTPUT, "%s: cannot create (%s)", tmp,
                       access(dirname(dir), W_OK) != 0 ? strerror(errno) : "HDF5 refused");
    }
    return DPT_OK;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

DptStatus dpt_h5_commit_tmp(hid_t *f, const char *tmp, const char *out)
{
    DptStatus st = DPT_OK;
    if (H5Fflush(*f, H5F_SCOPE_GLOBAL) < 0)
        st = dpt_err(DPT_EOUTPUT, "%s: cannot flush (disk full?)", tmp);
    if (H5Fclose(*f) < 0 && st == DPT_OK)
        st = dpt_err(DPT_EOUTPUT, "%s: cannot close (disk full?)", tmp);
    *f = H5I_INVALID_HID;
    if (st == DPT_OK && fsync_path(tmp, 0) != 0)
        st = dpt_err(DPT_EOUTPUT, "%s: fsync failed (%s)", tmp, strerror(errno));
    if (st == DPT_OK && rename(tmp, out) != 0)
        st = dpt_err(DPT_EOUTPUT, "%s: cannot rename to %s (%s)", tmp, out, strerror(errno));
    if (st != DPT_OK) {
        unlink(tmp);
        return st;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    fsync_path(dirname(dir), 1); /* best effort: some file systems refuse fsync on directories */
    return DPT_OK;
}

/* ---------------------------------------------------------------- class names, standardisation */

#define H5_ATTR_CLASS_NAMES "class_names"
#define H5_GRP_STANDARDIZE "standardize"
enum { NAME_BYTES = 65536 };

/* class_names: a root attribute (DESIGN.md), an array of fixed-length
 * UTF-8 strings, kept under the 64 KiB of an attribute in compact storage. */
static DptStatus write_class_names(hid_t f, const DptDataMeta *m, const char *out)
{
    size_t len = 1;
    for (size_t i = 0; i < m->n_classes; i++)
        len = strlen(m->class_names[i]) + 1 > len ? strlen(m->class_names[i]) + 1 : len;
    if (len * m->n_classes > 60000)
        return dpt_err(DPT_EINPUT, "%s: %zu class names of up to %zu bytes do not fit the class_names attribute "
                       "(60000 bytes at most)", out, m->n_classes, len - 1);
    char *buf = calloc(m->n_classes, len);
    if (!buf)
        return dpt_err(DPT_ENOMEM, "%s: out of memory for class names", out);
    for (size_t i = 0; i < m->n_classes; i++)
        memcpy(buf + i * len, m->class_names[i], strlen(m->class_names[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dims[1] = {m->n_classes};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(f, H5_ATTR_CLASS_NAMES, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    DptStatus st = a >= 0 && H5Awrite(a, t, buf) >= 0
                       ? DPT_OK
                       : dpt_err(DPT_EOUTPUT, "%s: cannot write attribute class_names", out);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    free(buf);
    return st;
}

static DptStatus write_standardize(hid_t f, const DptDataMeta *m, const char *out)
{
    hid_t g = H5Gcreate2(f, H5_GRP_STANDARDIZE, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return dpt_err(DPT_EOUTPUT, "%s: cannot create group /%s", out, H5_GRP_STANDARDIZE);
    hsize_t dims[1] = {m->d};
    DptStatus st = dpt_h5_write_dataset(g, "mean", H5T_NATIVE_FLOAT, 1, dims, m->mean, 0, out);
    if (st == DPT_OK)
        st = dpt_h5_write_dataset(g, "std", H5T_NATIVE_FLOAT, 1, dims, m->sd, 0, out);
    H5Gclose(g);
    return st;
}

DptStatus dpt_h5_write_meta(hid_t f, const DptDataMeta *m, const char *file)
{
    if (m->n_classes)
        DPT_TRY(write_class_names(f, m, file));
    if (m->mean)
        DPT_TRY(write_standardize(f, m, file));
    return DPT_OK;
}

static DptStatus read_vector(hid_t f, const char *path, const char *name, float **v, size_t *d)
{
    DptStatus st = DPT_OK;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    int rank = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, NULL) : -1;
    if (rank != 1 || dims[0] == 0 || dims[0] > ((hsize_t)1 << 31) || (*d && dims[0] != *d) ||
        !dpt_h5_is_number(ds, H5T_FLOAT))
        st = dpt_err(DPT_EINPUT, "%s: /%s: expected one float per feature, [%zu]", path, name, *d);
    else if (!(*v = malloc((size_t)dims[0] * sizeof **v)))
        st = dpt_err(DPT_ENOMEM, "%s: out of memory for /%s", path, name);
    else if (dpt_h5_read_all(ds, H5T_NATIVE_FLOAT, *v) < 0)
        st = dpt_err(DPT_EINPUT, "%s: cannot read /%s", path, name);
    *d = st == DPT_OK ? (size_t)dims[0] : *d;
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    return st;
}

DptStatus dpt_h5_read_meta(hid_t f, const char *path, DptDataMeta *m)
{
    if (H5Aexists(f, H5_ATTR_CLASS_NAMES) > 0) {
        size_t n = 0;
        if (!(m->name_buf = malloc(NAME_BYTES)))
            return dpt_err(DPT_ENOMEM, "%s: out of memory for class names", path);
        DptStatus st = dpt_h5_read_attr_strings(f, H5_ATTR_CLASS_NAMES, m->name_buf, NAME_BYTES, &n);
        if (st != DPT_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", dpt_err_message());
            dpt_err_clear();
            return dpt_err(st, "%s: %s", path, why);
        }
        if (!(m->class_names = malloc(n * sizeof *m->class_names)))
            return dpt_err(DPT_ENOMEM, "%s: out of memory for class names", path);
        for (size_t i = 0, o = 0; i < n; i++, o += strlen(m->name_buf + o) + 1)
            m->class_names[i] = m->name_buf + o;
        m->n_classes = n;
    }
    if (!dpt_h5_exists(f, H5_GRP_STANDARDIZE))
        return DPT_OK;
    if (!dpt_h5_exists(f, H5_GRP_STANDARDIZE "/mean") || !dpt_h5_exists(f, H5_GRP_STANDARDIZE "/std"))
        return dpt_err(DPT_EINPUT, "%s: /standardize needs both mean and std", path);
    size_t d = 0;
    DPT_TRY(read_vector(f, path, H5_GRP_STANDARDIZE "/mean", &m->mean, &d));
    DPT_TRY(read_vector(f, path, H5_GRP_STANDARDIZE "/std", &m->sd, &d));
    for (size_t j = 0; j < d; j++)
        if (!isfinite(m->mean[j]) || !(m->sd[j] > 0) || !isfinite(m->sd[j]))
            return dpt_err(DPT_EINPUT, "%s: /standardize: feature %zu has mean %g, std %g; expected finite values "
                           "and std > 0", path, j, (double)m->mean[j], (double)m->sd[j]);
    m->d = d;
    return DPT_OK;
}
