<#
.SYNOPSIS
    Install asnmon for one instrument on a Windows acquisition PC or lab server.

.DESCRIPTION
    Creates a venv under InstallDir, installs asnmon into it, writes the settings
    file with `asnmon init` (never overwriting one), runs the preflight
    (`asnmon check`) and registers a Task Scheduler task that starts the monitor
    at boot. The task runs run-asnmon.ps1, a small supervisor loop that restarts
    asnmon after a crash (with back-off) and stops when asnmon exits cleanly:
    Task Scheduler's own "restart on failure" only covers a task that fails to
    start, not a program that exits with an error. No NSSM, no third-party
    service wrapper: only what Windows ships.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File deploy\windows\install.ps1 -Instrument qqq1 -WatchFolder 'D:\Data'

.EXAMPLE
    # a network share: use its UNC path and an account that can read it
    .\install.ps1 -Instrument qqq1 -WatchFolder '\\labserver\instruments\QQQ1' -RunAs 'LAB\svc-asnmon'
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][ValidatePattern('^[A-Za-z0-9_-]+$')][string]$Instrument,
    [Parameter(Mandatory = $true)][string]$WatchFolder,
    [string]$InstallDir = (Join-Path $env:ProgramData 'asnmon'),
    [string]$Source = (Resolve-Path (Join-Path $PSScriptRoot '..\..')).Path,
    [string]$Python = 'py',
    [string]$RunAs = 'SYSTEM',
    [switch]$NoTask
)
$ErrorActionPreference = 'Stop'

$Venv = Join-Path $InstallDir 'venv'
$AsnmonExe = Join-Path $Venv 'Scripts\asnmon.exe'
$InstrumentDir = Join-Path $InstallDir $Instrument
$Settings = Join-Path $InstrumentDir 'settings.toml'
$Db = Join-Path $InstrumentDir 'asnmon.duckdb'

Write-Host "== venv $Venv"
New-Item -ItemType Directory -Force -Path $InstrumentDir | Out-Null
if ($Python -eq 'py') { & py -3.11 -m venv $Venv } else { & $Python -m venv $Venv }
if ($LASTEXITCODE -ne 0) { throw "could not create the venv (is Python 3.11+ installed?)" }
& (Join-Path $Venv 'Scripts\python.exe') -m pip install --upgrade pip
& (Join-Path $Venv 'Scripts\python.exe') -m pip install --upgrade $Source
if ($LASTEXITCODE -ne 0) { throw "pip could not install asnmon from $Source" }

Write-Host "== settings $Settings"
if (Test-Path $Settings) {
    Write-Host "   kept the existing settings file"
} else {
    & $AsnmonExe init $Settings --watch $WatchFolder --db $Db
    if ($LASTEXITCODE -ne 0) { throw "asnmon init failed" }
}

Write-Host "== preflight"
& $AsnmonExe check --settings $Settings
if ($LASTEXITCODE -ne 0) {
    Write-Warning "fix the problems above, then run this script again"
    exit 1
}
if ($NoTask) { exit 0 }

Write-Host "== scheduled task asnmon-$Instrument (at boot, restarts on failure)"
$Runner = Join-Path $InstallDir 'run-asnmon.ps1'
Copy-Item -Force (Join-Path $PSScriptRoot 'run-asnmon.ps1') $Runner
$Arguments = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File `"$Runner`" -Asnmon `"$AsnmonExe`" -Settings `"$Settings`" -LogDir `"$InstrumentDir`""
$Action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $Arguments -WorkingDirectory $InstrumentDir
$Trigger = New-ScheduledTaskTrigger -AtStartup
$TaskSettings = New-ScheduledTaskSettingsSet -StartWhenAvailable -RestartCount 999 `
    -RestartInterval (New-TimeSpan -Minutes 1) -ExecutionTimeLimit ([TimeSpan]::Zero) `
    -MultipleInstances IgnoreNew -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
if ($RunAs -eq 'SYSTEM') {
    Write-Warning "running as SYSTEM: it reaches network shares as the computer account; prefer -RunAs DOMAIN\user for a share"
    $Principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Limited
    Register-ScheduledTask -TaskName "asnmon-$Instrument" -Action $Action -Trigger $Trigger `
        -Settings $TaskSettings -Principal $Principal -Force | Out-Null
} else {
    $Credential = Get-Credential -UserName $RunAs -Message "Password of the account asnmon runs as"
    Register-ScheduledTask -TaskName "asnmon-$Instrument" -Action $Action -Trigger $Trigger `
        -Settings $TaskSettings -User $RunAs -Password $Credential.GetNetworkCredential().Password `
        -RunLevel Limited -Force | Out-Null
}
Start-ScheduledTask -TaskName "asnmon-$Instrument"
Write-Host "started. Logs: $InstrumentDir\supervisor.log (and [logs] log_file if set)"
Write-Host "dashboard full screen on this PC: deploy\windows\open-dashboard.ps1 -CreateShortcut"
