/* hold.exe PATH MILLIS: opens PATH for reading without FILE_SHARE_DELETE (as an older reader
 * or a virus scanner may), prints "held", keeps it open for MILLIS milliseconds, exits 0.
 * Built by windows/test.sh for tests/tests/platforms.rs; never shipped. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc != 3) {
        fputs("usage: hold.exe PATH MILLIS\n", stderr);
        return 2;
    }
    HANDLE h = CreateFileW(argv[1], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "hold.exe: cannot open: error %lu\n", GetLastError());
        return 1;
    }
    puts("held");
    fflush(stdout);
    Sleep((DWORD)_wtoi(argv[2]));
    CloseHandle(h);
    return 0;
}
