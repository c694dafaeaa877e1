/* A trivial AFL++ target for fork-server mode: one input on stdin per execution. */
#include <unistd.h>

int main(void) {
    unsigned char buf[64];
    ssize_t n = read(0, buf, sizeof buf);
    return n > 3 && buf[0] == 'x' ? 1 : 0;
}
