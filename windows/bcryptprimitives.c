/* ProcessPrng for Wine 8, whose prefix lacks bcryptprimitives.dll (Windows 10 and later ship
 * it; Rust's standard library takes its random bytes from it since Rust 1.78). Built by
 * windows/test.sh into the test's Wine prefix only; never shipped. It asks bcrypt.dll's
 * system RNG, which Wine has, for the bytes. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
