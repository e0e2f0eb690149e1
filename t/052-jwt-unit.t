# The logins' tokens (HS256 JWTs), made and checked on their own:
# see t/unit/jwt_test.c.
use strict;
use warnings;
use FindBin;

# built against the nginx under test (make test passes its build folder)
my $bin = ($ENV{SEADRAGON_BUILD} || "$FindBin::Bin/../build") . "/jwt-test";
unless (-x $bin) {
    print "1..0 # SKIP build/jwt-test is not built: run make unit\n";
    exit 0;
}
exec $bin or die "cannot run $bin: $!";
