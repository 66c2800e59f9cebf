/*
 * insn_count: count the guest instructions a qemu-user run executes, in total and by class.
 *
 *   qemu-aarch64 -plugin ./libinsn_count.so,out=counts.json[,mnemonics=on][,blocks=blocks.txt] PROG ARGS
 *
 * Classes (aarch64, decoded from the 32-bit encoding at translation time):
 *   fma          vector FMLA/FMLS: AdvSIMD three-same (fp16/fp32/fp64) and by-element (vector) forms
 *   fma_scalar   scalar FMADD/FMSUB/FNMADD/FNMSUB and scalar-by-element FMLA/FMLS
 *   loads_stores every load/store encoding (LDR/STR/LDP/STP/LD1.../ST1..., exclusive, atomics, PRFM)
 *   loads_stores_simd  the subset that moves SIMD&FP registers
 *   branches     branches, exception generation and system instructions (SVC, barriers, hints)
 * blocks=FILE also writes one line per executed translated block: "vaddr instructions executions" followed by
 * the block's static count of each class (vaddr in hex; a block is 4-byte instructions from vaddr on), for attributing counts to symbols.
 * Each translated block gets a record holding its per-class counts; one inline add per block
 * execution counts how often it ran, and the totals are the sums at exit. A block that leaves early
 * (a faulting load whose signal handler does not return) would be over-counted: not seen in our runs.
 * The inline add is not atomic: with several guest threads running at once counts may be lost.
 *
 * QEMU 7.2 (Debian bookworm's qemu-user) implements plugin API version 1 but ships no
 * qemu-plugin.h: the few declarations used are written below from QEMU's plugin API documentation.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API, version 1 (only what this plugin uses) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
bool qemu_plugin_bool_parse(const char *name, const char *val, bool *ret);
void qemu_plugin_outs(const char *string);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* ---- classification ---- */
enum { C_FMA, C_FMA_SCALAR, C_LDST, C_LDST_SIMD, C_BRANCH, N_CLASSES };
static const char *const CLASS_KEYS[N_CLASSES] = {
    "fma_instructions", "fma_scalar_instructions", "loads_stores", "loads_stores_simd", "branches"};

static void classify(uint32_t w, uint32_t counts[N_CLASSES])
{
    if ((w & 0x0A000000u) == 0x08000000u) {          /* op0 = x1x0: loads and stores */
        counts[C_LDST]++;
        if (w & (1u << 26)) counts[C_LDST_SIMD]++;    /* V: SIMD&FP register */
    } else if ((w & 0x1C000000u) == 0x14000000u) {   /* op0 = x101: branch, exception, system */
        counts[C_BRANCH]++;
    } else if ((w & 0xBF20FC00u) == 0x0E20CC00u      /* FMLA/FMLS (vector), fp32/fp64 */
            || (w & 0xBF60FC00u) == 0x0E400C00u      /* FMLA/FMLS (vector), fp16 */
            || (w & 0xBF00B400u) == 0x0F001000u) {   /* FMLA/FMLS (by element, vector) */
        counts[C_FMA]++;
    } else if ((w & 0xFF000000u) == 0x1F000000u      /* FMADD/FMSUB/FNMADD/FNMSUB */
            || (w & 0xFF00B400u) == 0x5F001000u) {   /* FMLA/FMLS (by element, scalar) */
        counts[C_FMA_SCALAR]++;
    }
}

/* ---- per translated block records ---- */
typedef struct Block {
    uint64_t execs;                 /* inline-incremented by the generated code */
    uint64_t vaddr;
    uint32_t n_insns;
    uint32_t counts[N_CLASSES];
    uint16_t *mnemonic_ids;         /* per instruction, when mnemonics=on */
    struct Block *next;
} Block;

static Block *blocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *out_path, *blocks_path;
static bool with_mnemonics;
static char **mnemonics;            /* interned names, id = index */
static size_t n_mnemonics, cap_mnemonics;

static uint16_t intern(const char *disas)
{
    char name[32];
    size_t len = strcspn(disas, " \t");
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, disas, len);
    name[len] = 0;
    for (size_t i = 0; i < n_mnemonics; i++)
        if (strcmp(mnemonics[i], name) == 0) return (uint16_t)i;
    if (n_mnemonics == cap_mnemonics) {
        cap_mnemonics = cap_mnemonics ? 2 * cap_mnemonics : 256;
        mnemonics = realloc(mnemonics, cap_mnemonics * sizeof *mnemonics);
    }
    mnemonics[n_mnemonics] = strdup(name);
    return n_mnemonics < 65535 ? (uint16_t)n_mnemonics++ : 65535;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    Block *b = calloc(1, sizeof *b);
    b->n_insns = (uint32_t)n;
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    pthread_mutex_lock(&lock);
    if (with_mnemonics) b->mnemonic_ids = malloc(n * sizeof *b->mnemonic_ids);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t w = 0;
        if (qemu_plugin_insn_size(insn) == 4) memcpy(&w, qemu_plugin_insn_data(insn), 4);
        classify(w, b->counts);
        if (with_mnemonics) {
            char *text = qemu_plugin_insn_disas(insn);
            b->mnemonic_ids[i] = intern(text ? text : "?");
            free(text);
        }
    }
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    uint64_t total = 0, classes[N_CLASSES] = {0}, n_blocks = 0;
    uint64_t *per_mnemonic = calloc(n_mnemonics + 1, sizeof *per_mnemonic);
    for (Block *b = blocks; b; b = b->next) {
        n_blocks++;
        total += b->execs * b->n_insns;
        for (int c = 0; c < N_CLASSES; c++) classes[c] += b->execs * b->counts[c];
        if (b->mnemonic_ids)
            for (uint32_t i = 0; i < b->n_insns; i++) per_mnemonic[b->mnemonic_ids[i]] += b->execs;
    }
    FILE *f = out_path ? fopen(out_path, "w") : NULL;
    if (!f) {
        qemu_plugin_outs("insn_count: no out=FILE given or it cannot be written\n");
        return;
    }
    fprintf(f, "{\"instructions\": %" PRIu64, total);
    for (int c = 0; c < N_CLASSES; c++) fprintf(f, ", \"%s\": %" PRIu64, CLASS_KEYS[c], classes[c]);
    fprintf(f, ", \"translated_blocks\": %" PRIu64, n_blocks);
    if (with_mnemonics) {
        fprintf(f, ", \"mnemonics\": {");
        for (size_t i = 0; i < n_mnemonics; i++)
            fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", mnemonics[i], per_mnemonic[i]);
        fprintf(f, "}");
    }
    fprintf(f, "}\n");
    fclose(f);
    FILE *bf = blocks_path ? fopen(blocks_path, "w") : NULL;
    if (!bf) return;
    for (Block *b = blocks; b; b = b->next)
        if (b->execs) {
            fprintf(bf, "%" PRIx64 " %" PRIu32 " %" PRIu64, b->vaddr, b->n_insns, b->execs);
            for (int c = 0; c < N_CLASSES; c++) fprintf(bf, " %" PRIu32, b->counts[c]);
            fputc('\n', bf);
        }
    fclose(bf);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return -1;
        *eq = 0;
        if (strcmp(argv[i], "out") == 0) {
            out_path = strdup(eq + 1);
        } else if (strcmp(argv[i], "blocks") == 0) {
            blocks_path = strdup(eq + 1);
        } else if (strcmp(argv[i], "mnemonics") == 0) {
            if (!qemu_plugin_bool_parse(argv[i], eq + 1, &with_mnemonics)) return -1;
        } else {
            return -1;
        }
    }
    if (!out_path) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
