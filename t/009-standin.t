# The stand-in Ollama's own tests (scripts/test_ollama_standin.py): the
# other suites trust what it records, so it is tested too.
use strict;
use warnings;
use FindBin;
use Test::More;

my $script = "$FindBin::Bin/../scripts/test_ollama_standin.py";
my $out = `python3 '$script' 2>&1`;
my $status = $? >> 8;

my ($ran) = $out =~ /^Ran (\d+) tests?/m;
ok(defined $ran && $ran > 0, "the stand-in's self-test ran (" . ($ran // 0) . " tests)");
is($status, 0, "the stand-in's self-test passes") or diag($out);

done_testing();
