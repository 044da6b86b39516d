#include "dptrain/dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "dist_comm.h"


static MPI_Comm world_comm = MPI_COMM_NULL;  /* MPI_COMM_WORLD, or a subset (tests) */
static MPI_Comm node_comm = MPI_COMM_NULL;
static MPI_Comm leader_comm = MPI_COMM_NULL;  /* node rank 0 of every node (MPI_COMM_NULL elsewhere) */

MPI_Comm dpt_dist_world_comm(void) { return world_comm; }
MPI_Comm dpt_dist_node_comm(void) { return node_comm; }

/* The node count and the smallest and largest node, from the node communicator. */
static void count_nodes(DptDist *d)
{
    int v[3] = {d->node_rank == 0, d->node_size, -d->node_size};
    MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_SUM, world_comm);
    MPI_Allreduce(MPI_IN_PLACE, v + 1, 2, MPI_INT, MPI_MAX, world_comm);
    d->n_nodes = v[0];
    d->node_size_max = v[1];
    d->node_size_min = -v[2];
}

/* The processes the launcher says it started, where it says so: Open MPI's
 * mpirun (OMPI_COMM_WORLD_SIZE, trusted first: inside an allocation its
 * daemons are an srun step of their own), a PMI launcher (PMI_SIZE), or
 * srun (SLURM_STEP_NUM_TASKS, with SLURM_PROCID); 0 where none says. The
 * variable's name goes to *var. */
static long launched_tasks(const char **var)
{
    static const struct {
        const char *count, *with;   /* the count, and a variable that must be set beside it (or NULL) */
    } vars[] = {{"OMPI_COMM_WORLD_SIZE", NULL}, {"PMI_SIZE", NULL}, {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID"}};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i].count);
        if (!v || !v[0] || (vars[i].with && !getenv(vars[i].with)))
            continue;
        char *end;
        const long n = strtol(v, &end, 10);
        *var = vars[i].count;
        return *end == '\0' && n > 0 ? n : 0;
    }
    return 0;
}

DptStatus dpt_dist_init(DptDist *d, int *argc, char ***argv)
{
    int inited = 0, provided = 0;
    memset(d, 0, sizeof *d);
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return dpt_err(DPT_EMPI, "MPI_Init_thread failed");
        d->initialised_here = 1;
    } else {
        MPI_Query_thread(&provided);
    }
    if (world_comm == MPI_COMM_NULL)
        world_comm = MPI_COMM_WORLD;
    MPI_Comm_rank(world_comm, &d->rank);
    MPI_Comm_size(world_comm, &d->world_size);
    if (provided < MPI_THREAD_FUNNELED)
        return dpt_err(DPT_EMPI, "the MPI library provides thread level %d; dptrain needs MPI_THREAD_FUNNELED",
                       provided);
    /* Started as several processes that MPI did not join into one job
     * (srun without the MPI plugin this Open MPI speaks, or another MPI's
     * launcher): each would train alone, all of them into the same files. */
    const char *var = "";
    const long tasks = launched_tasks(&var);
    if (d->world_size == 1 && tasks > 1) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = '\0';   /* "Open MPI v4.1.4, package: ..." */
        return dpt_err(DPT_EMPI, "%s=%ld, but MPI made this process a job of its own (1 rank), so each of the %ld "
                       "would train alone: under srun pass --mpi=pmix (srun --mpi=list shows what the cluster has), "
                       "or start dptrain with the mpirun of the MPI it was built with (%s)", var, tasks, tasks,
                       lib[0] ? lib : "see dptrain --version");
    }
    if (node_comm == MPI_COMM_NULL)
        MPI_Comm_split_type(world_comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node_comm);
    MPI_Comm_rank(node_comm, &d->node_rank);
    MPI_Comm_size(node_comm, &d->node_size);
    count_nodes(d);
    int leader = d->node_rank == 0;
    if (leader_comm == MPI_COMM_NULL)
        MPI_Comm_split(world_comm, leader ? 0 : MPI_UNDEFINED, d->rank, &leader_comm);
    return DPT_OK;
}

int dpt_dist_subset(DptDist *d, int n) { return dpt_dist_subset_nodes(d, n, NULL); }

int dpt_dist_subset_nodes(DptDist *d, int n, const int *node_sizes)
{
    int world_rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    if (world_comm != MPI_COMM_WORLD && world_comm != MPI_COMM_NULL)
        MPI_Comm_free(&world_comm);
    if (node_comm != MPI_COMM_NULL)
        MPI_Comm_free(&node_comm);
    if (leader_comm != MPI_COMM_NULL)
        MPI_Comm_free(&leader_comm);
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank < n ? 0 : MPI_UNDEFINED, world_rank, &sub);
    int in = sub != MPI_COMM_NULL;
    world_comm = in ? sub : MPI_COMM_WORLD;
    if (!in)
        return 0; /* outside: no collective until the next dpt_dist_subset */
    if (node_sizes) {
        /* "Nodes" of consecutive ranks (one machine: any group of its ranks shares memory). */
        int node = 0;
        for (int end = node_sizes[0]; world_rank >= end; end += node_sizes[node])
            node++;
        MPI_Comm_split(world_comm, node, world_rank, &node_comm);
    } else {
        MPI_Comm_split_type(world_comm, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node_comm);
    }
    int provided, init_here = d->initialised_here;
    MPI_Query_thread(&provided);
    memset(d, 0, sizeof *d);
    d->initialised_here = init_here;
    MPI_Comm_rank(world_comm, &d->rank);
    MPI_Comm_size(world_comm, &d->world_size);
    MPI_Comm_rank(node_comm, &d->node_rank);
    MPI_Comm_size(node_comm, &d->node_size);
    count_nodes(d);
    int leader = d->node_rank == 0;
    MPI_Comm_split(world_comm, leader ? 0 : MPI_UNDEFINED, d->rank, &leader_comm);
    return in;
}

void dpt_dist_finalize(DptDist *d)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin)
        return;
    if (node_comm != MPI_COMM_NULL)
        MPI_Comm_free(&node_comm);
    if (leader_comm != MPI_COMM_NULL)
        MPI_Comm_free(&leader_comm);
    if (world_comm != MPI_COMM_WORLD && world_comm != MPI_COMM_NULL)
        MPI_Comm_free(&world_comm);
    world_comm = MPI_COMM_NULL;
    if (d->initialised_here)
        MPI_Finalize();
}

void dpt_dist_abort(int status)
{
    int inited = 0, fin = 0, size = 1;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin && MPI_Comm_size(MPI_COMM_WORLD, &size) == MPI_SUCCESS && size > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
}

static int last_reporter = -1;

DptStatus dpt_dist_agree(const DptDist *d, DptStatus local, int *reporter)
{
    /* The reporter: the lowest failing rank that holds a message, else the
     * lowest failing rank. Encoded so that one MAX finds it. */
    int P = d->world_size, has_msg = dpt_err_message()[0] != '\0';
    int key = local == DPT_OK ? -3 * P : has_msg ? -d->rank : -(P + d->rank);
    int mine[2] = {(int)local, key}, worst[2];
    MPI_Allreduce(mine, worst, 2, MPI_INT, MPI_MAX, world_comm);
    int v = -worst[1];
    last_reporter = worst[0] == DPT_OK ? -1 : v < P ? v : v - P;
    if (reporter)
        *reporter = last_reporter;
    return (DptStatus)worst[0];
}

int dpt_dist_reporter(void) { return last_reporter; }

void dpt_dist_bcast(const DptDist *d, void *buf, size_t bytes, int root)
{
    (void)d;
    char *p = buf;
    while (bytes > 0) {
        int chunk = bytes > (1u << 30) ? (1 << 30) : (int)bytes;
        MPI_Bcast(p, chunk, MPI_BYTE, root, world_comm);
        p += chunk;
        bytes -= (size_t)chunk;
    }
}

/* MPI counts are int: large buffers go in pieces of at most 2^30 elements. */
static void allreduce_chunked(void *buf, size_t n, size_t elem, MPI_Datatype t, MPI_Op op)
{
    char *p = buf;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        MPI_Allreduce(MPI_IN_PLACE, p, chunk, t, op, world_comm);
        p += (size_t)chunk * elem;
        n -= (size_t)chunk;
    }
}

void dpt_dist_sum_floats(const DptDist *d, float *buf, size_t n)
{
    if (d->world_size > 1)
        allreduce_chunked(buf, n, sizeof(float), MPI_FLOAT, MPI_SUM);
}

void dpt_dist_sum_doubles(const DptDist *d, double *buf, size_t n)
{
    if (d->world_size > 1)
        allreduce_chunked(buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM);
}

void dpt_dist_sum_i64(const DptDist *d, int64_t *buf, size_t n)
{
    if (d->world_size > 1)
        allreduce_chunked(buf, n, sizeof(int64_t), MPI_INT64_T, MPI_SUM);
}

void dpt_dist_max_doubles(const DptDist *d, double *buf, size_t n)
{
    if (d->world_size > 1)
        allreduce_chunked(buf, n, sizeof(double), MPI_DOUBLE, MPI_MAX);
}

void dpt_dist_gather_text(const DptDist *d, const char *mine, size_t len, char *all)
{
    (void)d;
    MPI_Gather(mine, (int)len, MPI_CHAR, all, (int)len, MPI_CHAR, 0, world_comm);
}

void dpt_dist_node_allgather(const DptDist *d, const void *mine, size_t bytes, void *all)
{
    (void)d;
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, node_comm);
}

void dpt_dist_stats(const DptDist *d, double v, double out[3])
{
    double mm[2] = {-v, v}, sum = v;
    if (d->world_size > 1) {
        MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_DOUBLE, MPI_MAX, world_comm);
        MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, world_comm);
    }
    out[0] = -mm[0];
    out[1] = sum / d->world_size;
    out[2] = mm[1];
}

int dpt_dist_same_hash(const DptDist *d, uint64_t hash)
{
    /* max(h) and max(~h) = ~min(h) in one allreduce: equal iff min == max. */
    uint64_t v[2] = {hash, ~hash};
    if (d->world_size > 1)
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, world_comm);
    return v[0] == ~v[1];
}

/* A node-shared region (an MPI-3 window), or a private one (win unused). */
typedef struct {
    MPI_Win win;
    void *priv;
} Region;

/* Open MPI 4.1 backs a shared window by a file in /dev/shm; one larger than
 * the space left there fails on node rank 0 alone (MPI_ERR_INTERN, fatal by
 * default; returned, the other ranks wait inside MPI_Win_allocate_shared for
 * ever). So node rank 0 checks the space
 * first (with 64 KiB and 1/64 to spare for the window's own state), and
 * every rank agrees before any allocates. */
static int shm_room(size_t bytes, unsigned long long *avail, const char **where)
{
    const char *dir = getenv("OMPI_MCA_osc_sm_backing_directory");   /* where the user moved them */
    *where = dir && dir[0] ? dir : "/dev/shm";
    struct statvfs sv;
    if (statvfs(*where, &sv) != 0)
        return 1;   /* no /dev/shm: Open MPI uses its session directory */
    *avail = (unsigned long long)sv.f_bavail * (unsigned long long)sv.f_frsize;
    return *avail >= (unsigned long long)bytes + bytes / 64 + (64u << 10);
}

DptStatus dpt_dist_shared_alloc(const DptDist *d, size_t bytes, void **ptr, void **handle)
{
    unsigned long long avail = 0;
    const char *where = "";
    Region *r = calloc(1, sizeof *r);
    DptStatus st = r ? DPT_OK : dpt_err(DPT_ENOMEM, "cannot allocate a window handle");
    /* A node of one rank needs no room there: Open MPI keeps a window of one
     * process in that process's memory (measured: 252 KB, and Fashion-MNIST's
     * 220 MB, on an 8 KiB and a 16 MiB /dev/shm). */
    if (st == DPT_OK && d->node_rank == 0 && d->node_size > 1 && !shm_room(bytes, &avail, &where))
        st = dpt_err(DPT_ENOMEM, "cannot allocate %zu bytes of node-shared memory: %s has %llu bytes free "
                     "(a container's default /dev/shm is 64 MiB: docker run --shm-size, fewer ranks a node, or "
                     "OMPI_MCA_osc_sm_backing_directory=<a larger local directory>)", bytes, where, avail);
    st = dpt_dist_agree(d, st, NULL);
    if (st != DPT_OK) {
        free(r);
        return st;
    }
    MPI_Aint size = d->node_rank == 0 ? (MPI_Aint)(bytes ? bytes : 1) : 0;
    void *base = NULL;
    int rc = MPI_Win_allocate_shared(size, 1, MPI_INFO_NULL, node_comm, &base, &r->win);
    if (rc != MPI_SUCCESS) {
        free(r);
        return dpt_err(DPT_ENOMEM, "cannot allocate %zu bytes of node-shared memory", bytes);
    }
    MPI_Aint qsize;
    int disp;
    MPI_Win_shared_query(r->win, 0, &qsize, &disp, ptr);
    *handle = r;
    return DPT_OK;
}

DptStatus dpt_dist_private_alloc(size_t bytes, void **ptr, void **handle)
{
    Region *r = calloc(1, sizeof *r);
    if (!r || posix_memalign(&r->priv, 64, bytes ? bytes : 1) != 0) {
        free(r);
        return dpt_err(DPT_ENOMEM, "cannot allocate %zu bytes", bytes);
    }
    *ptr = r->priv;
    *handle = r;
    return DPT_OK;
}

void dpt_dist_shared_free(void **handle)
{
    if (!handle || !*handle)
        return;
    Region *r = *handle;
    int fin = 0;
    MPI_Finalized(&fin);
    if (r->priv)
        free(r->priv);
    else if (!fin)
        MPI_Win_free(&r->win);
    free(r);
    *handle = NULL;
}

void dpt_dist_bcast_model(const DptDist *d, void *buf, size_t bytes, int shared)
{
    if (!shared) {
        dpt_dist_bcast(d, buf, bytes, 0);
        return;
    }
    /* World rank 0 is node rank 0 of its node (the node communicator is
     * ordered by world rank), so the leaders' rank 0 holds the data. */
    if (leader_comm != MPI_COMM_NULL && d->n_nodes > 1) {
        char *p = buf;
        for (size_t done = 0; done < bytes;) {
            int chunk = bytes - done > (1u << 30) ? 1 << 30 : (int)(bytes - done);
            MPI_Bcast(p + done, chunk, MPI_BYTE, 0, leader_comm);
            done += (size_t)chunk;
        }
    }
    MPI_Barrier(node_comm);
}

int dpt_dist_node_all(const DptDist *d, int flag)
{
    (void)d;
    int all = flag;
    MPI_Allreduce(&flag, &all, 1, MPI_INT, MPI_MIN, node_comm);
    return all;
}

void dpt_dist_node_barrier(const DptDist *d)
{
    (void)d;
    MPI_Barrier(node_comm);
}

void dpt_dist_shared_zero(const DptDist *d, void *mem, size_t bytes)
{
    const size_t k = (size_t)d->node_size, j = (size_t)d->node_rank;
    memset((char *)mem + bytes * j / k, 0, bytes * (j + 1) / k - bytes * j / k);
    MPI_Barrier(node_comm);
}

/* ---------------------------------------------------------------- rows between nodes */

void dpt_dist_node_table(const DptDist *d, int *node, int *nrank)
{
    int leader = d->rank;
    MPI_Bcast(&leader, 1, MPI_INT, 0, node_comm);
    MPI_Allgather(&leader, 1, MPI_INT, node, 1, MPI_INT, world_comm);
    MPI_Allgather(&d->node_rank, 1, MPI_INT, nrank, 1, MPI_INT, world_comm);
    /* A node's rank 0 has its smallest world rank (the split's key), so in
     * rank order each leader comes first: it takes the next index, and the
     * node's other ranks copy it. */
    int m = 0;
    for (int r = 0; r < d->world_size; r++)
        node[r] = node[r] == r ? m++ : node[node[r]];
}

struct DptPeers {
    size_t max, n;
    MPI_Request req[];
};

DptStatus dpt_dist_peers_init(DptPeers **out, size_t max)
{
    DptPeers *p = calloc(1, sizeof *p + (max ? max : 1) * sizeof(MPI_Request));
    if (!p)
        return dpt_err(DPT_ENOMEM, "cannot allocate the row transfers");
    p->max = max;
    *out = p;
    return DPT_OK;
}

static MPI_Request *peers_next(DptPeers *p)
{
    if (p->n == p->max)
        dpt_dist_peers_wait(p);
    return &p->req[p->n++];
}

void dpt_dist_peers_send(DptPeers *p, int to, int tag, const void *buf, size_t bytes)
{
    MPI_Isend(buf, (int)bytes, MPI_BYTE, to, tag, world_comm, peers_next(p));
}

void dpt_dist_peers_recv(DptPeers *p, int from, int tag, void *buf, size_t bytes)
{
    MPI_Irecv(buf, (int)bytes, MPI_BYTE, from, tag, world_comm, peers_next(p));
}

void dpt_dist_peers_wait(DptPeers *p)
{
    MPI_Waitall((int)p->n, p->req, MPI_STATUSES_IGNORE);
    p->n = 0;
}

void dpt_dist_peers_free(DptPeers **p)
{
    free(*p);
    *p = NULL;
}
