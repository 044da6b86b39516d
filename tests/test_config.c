/* Options from the command line and INI files; every bad value named. */
#include "testutil.h"
#include "dptrain/config.h"

static DptStatus parse(DptConfig *c, const char *line)
{
    char buf[1024], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 64; t = strtok(NULL, " "))
        argv[argc++] = t;
    dpt_config_defaults(c);
    dpt_err_clear();
    DptStatus st = dpt_config_parse(c, argc, argv);
    if (st == DPT_OK)
        st = dpt_config_validate(c);
    return st;
}

static void expect_error(const char *line, const char *fragment)
{
    DptConfig c;
    assert_int_equal(parse(&c, line), DPT_EUSAGE);
    if (!strstr(dpt_err_message(), fragment)) {
        print_error("'%s': message '%s' lacks '%s'\n", line, dpt_err_message(), fragment);
        fail();
    }
}

static void test_command_line(void **state)
{
    (void)state;
    DptConfig c;
    assert_int_equal(parse(&c, "--data d.h5 --layers 784,100,10 --hidden relu --output softmax --cost cce "
                               "--optimizer momentum --momentum 0.5 --lr=0.25 --batch full --epochs 3 "
                               "--deterministic --no-overlap --seed 7"), DPT_OK);
    assert_string_equal(c.data, "d.h5");
    assert_int_equal(c.n_sizes, 3);
    assert_int_equal(c.sizes[1], 100);
    assert_int_equal(c.hidden, DPT_ACT_RELU);
    assert_int_equal(c.opt.kind, DPT_OPT_MOMENTUM);
    assert_float_equal(c.opt.momentum, 0.5, 0);
    assert_float_equal(c.sched.lr, 0.25, 0);
    assert_int_equal(c.batch, 0);
    assert_int_equal(c.epochs, 3);
    assert_true(c.deterministic);
    assert_false(c.overlap);
    assert_int_equal(c.seed, 7);
}

/* Text values are copies the configuration owns, allocated to their size:
 * unchanged when the caller's buffer changes, replaced when set again, all
 * "" after dpt_config_free; one length limit and a clear error past it. */
static void test_text_values_owned(void **state)
{
    (void)state;
    DptConfig c;
    dpt_config_defaults(&c);
    assert_string_equal(c.save, "");
    assert_string_equal(c.trace_params, "");
    char v[32] = "first.h5";
    assert_int_equal(dpt_config_set(&c, "save", v), DPT_OK);
    strcpy(v, "changed");
    assert_string_equal(c.save, "first.h5");
    assert_int_equal(dpt_config_set(&c, "save", "second.h5"), DPT_OK);
    assert_int_equal(dpt_config_set(&c, "checkpoint-dir", "runs/a"), DPT_OK);
    assert_string_equal(c.save, "second.h5");
    assert_string_equal(c.checkpoint_dir, "runs/a");
    char *long_path = malloc(DPT_PATH_MAX + 1);
    memset(long_path, 'a', DPT_PATH_MAX);
    long_path[DPT_PATH_MAX] = '\0';
    dpt_err_clear();
    assert_int_equal(dpt_config_set(&c, "data", long_path), DPT_EUSAGE);
    assert_non_null(strstr(dpt_err_message(), "--data: value longer than 1023 characters"));
    free(long_path);
    dpt_err_clear();
    assert_int_equal(dpt_config_set(&c, "sav", "x.h5"), DPT_EUSAGE);
    assert_non_null(strstr(dpt_err_message(), "unknown option '--sav'"));
    dpt_err_clear();
    dpt_config_free(&c);
    assert_null(c.strings);
    assert_string_equal(c.save, "");
    assert_string_equal(c.checkpoint_dir, "");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error("--data d.h5 --layers 784,,10", "--layers '784,,10'");
    expect_error("--data d.h5 --layers 784", "at least two sizes");
    expect_error("--data d.h5 --layers 784,0,10", "out of range");
    expect_error("--data d.h5 --layers 784,x", "expected positive integers");
    expect_error("--data d.h5 --layers 2,2 --lr -1", "--lr -1: expected a positive number");
    expect_error("--data d.h5 --layers 2,2 --lr abc", "--lr 'abc': expected a finite number");
    expect_error("--data d.h5 --layers 2,2 --epochs 0", "--epochs 0");
    expect_error("--data d.h5 --layers 2,2 --batch 0", "--batch '0'");
    expect_error("--data d.h5 --layers 2,2 --batch many", "--batch 'many'");
    expect_error("--data d.h5 --layers 2,2 --hidden softmax", "--hidden 'softmax'");
    expect_error("--data d.h5 --layers 2,2 --cost hinge", "--cost 'hinge'");
    expect_error("--data d.h5 --layers 2,2 --optimizer lbfgs", "--optimizer 'lbfgs'");
    expect_error("--data d.h5 --layers 2,2 --momentum 1", "--momentum 1");
    expect_error("--data d.h5 --layers 2,2 --output linear --cost cce", "--cost cce needs");
    expect_error("--data d.h5 --layers 2,2 --frobnicate 3", "unknown option '--frobnicate'");
    expect_error("--data d.h5 --layers 2,2 --lr", "--lr needs a value");
    expect_error("--data d.h5 --layers 2,2 stray", "unexpected argument 'stray'");
    expect_error("--layers 2,2", "--data is required");
    expect_error("--data d.h5", "--layers is required");
    expect_error("--data d.h5 --layers 2,2 --trace-every 5", "need --trace FILE.h5");
    expect_error("--data d.h5 --layers 2,2 --checkpoint-every 5", "need --checkpoint-dir");
    expect_error("--data d.h5 --layers 2,2 --checkpoint-minutes 30", "need --checkpoint-dir");
    expect_error("--data d.h5 --layers 2,2 --checkpoint-dir c --checkpoint-minutes -1", "--checkpoint-minutes -1");
    expect_error("--data d.h5 --layers 2,2 --checkpoint-dir c --checkpoint-minutes inf", "expected a finite number");
    expect_error("--data d.h5 --layers 2,2 --keep 0", "--keep 0");
    expect_error("--data d.h5 --layers 2,2 --config /nonexistent.ini", "cannot open");
    dpt_err_clear();
}

static void test_ini_file(void **state)
{
    (void)state;
    const char *ini = tu_path("run.ini");
    FILE *f = fopen(ini, "w");
    fputs("; a comment\n[train]\ndata = from-file.h5\nlayers = 4,3,2\nlr = 0.5\nepochs = 4\ndeterministic = true\n", f);
    fclose(f);
    char line[512];
    snprintf(line, sizeof line, "--config %s --lr 0.125", ini);
    DptConfig c;
    assert_int_equal(parse(&c, line), DPT_OK);
    /* a relative path in an INI file is taken from the file's folder (absolute) */
    assert_true(c.data[0] == '/');
    assert_non_null(strstr(c.data, tu_path("from-file.h5")));
    assert_float_equal(c.sched.lr, 0.125, 0); /* the command line wins */
    assert_int_equal(c.epochs, 4);
    assert_true(c.deterministic);
    /* the resolved configuration reads back to the same options */
    char text[8192];
    dpt_config_format(&c, text, sizeof text);
    f = fopen(tu_path("round.ini"), "w");
    fputs(text, f);
    fclose(f);
    DptConfig d;
    dpt_config_defaults(&d);
    assert_int_equal(dpt_config_load_ini(&d, tu_path("round.ini")), DPT_OK);
    assert_float_equal(d.sched.lr, 0.125, 0);
    assert_int_equal(d.n_sizes, 3);
    assert_true(d.deterministic);
    /* keys of another section are refused; inline comments are not values */
    f = fopen(ini, "w");
    fputs("[train]\nepochs = 3  # three\n[eval]\nlr = 0.5\n", f);
    fclose(f);
    snprintf(line, sizeof line, "--config %s", ini);
    expect_error(line, "section [eval] (key 'lr')");
    f = fopen(ini, "w");
    fputs("[train]\ndata = d.h5\nlayers = 4,2\nepochs = 3  # three\nlr = 0.25 ; slower\n", f);
    fclose(f);
    assert_int_equal(parse(&c, line), DPT_OK);
    assert_int_equal(c.epochs, 3);
    assert_float_equal(c.sched.lr, 0.25, 0);
    expect_error("--data d.h5 --layers 2,2 --epoch 3", "did you mean --epochs?");
    /* unknown keys and bad values name the file */
    f = fopen(ini, "w");
    fputs("[train]\nlearning_rate = 1\n", f);
    fclose(f);
    snprintf(line, sizeof line, "--config %s", ini);
    expect_error(line, "unknown key 'learning_rate'");
    f = fopen(ini, "w");
    fputs("[train]\nbatch = -3\n", f);
    fclose(f);
    expect_error(line, "run.ini: batch '-3'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_text_values_owned),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_ini_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
