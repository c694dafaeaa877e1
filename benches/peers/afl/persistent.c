/* The same trivial target in AFL++'s persistent mode: many inputs per process, from shared
 * memory (__AFL_FUZZ_TESTCASE_BUF), as `Pool::imap_outcomes` runs many inputs per worker. */
#include <unistd.h>

__AFL_FUZZ_INIT();

int main(void) {
    __AFL_INIT();
    unsigned char *buf = __AFL_FUZZ_TESTCASE_BUF;
    while (__AFL_LOOP(100000)) {
        int len = __AFL_FUZZ_TESTCASE_LEN;
        if (len > 3 && buf[0] == 'x') {
            volatile int hit = 1;
            (void)hit;
        }
    }
    return 0;
}
