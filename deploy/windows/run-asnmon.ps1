<#
.SYNOPSIS
    Supervisor run by the scheduled task: keeps `asnmon run` alive.

.DESCRIPTION
    Starts asnmon; if it exits with an error it is started again after 10 s,
    doubling up to 5 min while it keeps failing within a minute of starting.
    A clean exit (code 0: stopped on purpose) ends the loop. Every start and
    exit is appended to supervisor.log in LogDir.
#>
param(
    [Parameter(Mandatory = $true)][string]$Asnmon,
    [Parameter(Mandatory = $true)][string]$Settings,
    [Parameter(Mandatory = $true)][string]$LogDir
)
$Log = Join-Path $LogDir 'supervisor.log'
$Delay = 10
while ($true) {
    $Started = Get-Date
    Add-Content -Path $Log -Value "$(Get-Date -Format s) starting asnmon run --settings $Settings"
    & $Asnmon run --settings $Settings *>> (Join-Path $LogDir 'asnmon-console.log')
    $Code = $LASTEXITCODE
    Add-Content -Path $Log -Value "$(Get-Date -Format s) asnmon exited with code $Code"
    if ($Code -eq 0) { break }
    if (((Get-Date) - $Started).TotalSeconds -gt 60) { $Delay = 10 } else { $Delay = [Math]::Min($Delay * 2, 300) }
    Start-Sleep -Seconds $Delay
}
