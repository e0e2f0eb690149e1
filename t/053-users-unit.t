# The store's users, JWT secrets and argon2id password hashes, tested on
# their own through the codec: see t/unit/users_test.c.
use strict;
use warnings;
use FindBin;

my $bin = ($ENV{SEADRAGON_BUILD} || "$FindBin::Bin/../build") . "/users-test";
unless (-x $bin) {
    print "1..0 # SKIP build/users-test is not built: run make unit\n";
    exit 0;
}
exec $bin or die "cannot run $bin: $!";
