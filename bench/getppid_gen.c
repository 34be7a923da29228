/* Fires syscalls:sys_enter_getppid as fast as one thread can for argv[1]
 * seconds; prints "<calls> <pid>". */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long n = 0;
    for (;;) {
        for (int i = 0; i < 1000; i++) syscall(SYS_getppid);
        n += 1000;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= secs) break;
    }
    printf("%ld %d\n", n, getpid());
    return 0;
}
