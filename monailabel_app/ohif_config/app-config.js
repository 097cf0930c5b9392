/*
 * OHIF v3 configuration of this MONAI Label app (served at /ohif/ in place of the bundle's own).
 *
 * - Images come through the app's DICOMweb proxy (/proxy/dicom/...), so the browser talks to one
 *   origin and needs no CORS set-up.
 * - The MONAI Label mode is the bundle's own, plus OHIF's segmentation panel (brush, eraser, shapes,
 *   segment list) next to the MONAI Label panel, and a "Save Label" toolbar button: after Run,
 *   correct the segments and save; the app stores the label as a DICOM SEG in the archive and counts
 *   the series as labelled (see saveLabel below).
 * - The MONAI Label panel's server field starts at the address this viewer was loaded from (the
 *   bundle's default is port 8000 of the same host); a value the user types is kept in a cookie.
 */
(function defaultMonaiLabelServer() {
  if (!/(^|;) ?MONAILABEL_SERVER_URL=[^;]/.test(document.cookie)) {
    document.cookie =
      'MONAILABEL_SERVER_URL=' + escape(window.location.origin + '/') + '; path=/ohif; SameSite=Lax';
  }
})();

const SEGMENTATION_PANEL = '@ohif/extension-cornerstone.panelModule.panelSegmentationWithTools';

/* The bundled mode puts buttons "BrushTools" and "Shapes" into the segmentation panel's toolbox but
 * defines neither (the panel then fails to render); its tool groups hold the cornerstone tools. */
function brushOption(id, toolNames) {
  return [
    {
      name: 'Radius (mm)',
      id: id + '-radius',
      type: 'range',
      min: 0.5,
      max: 50,
      step: 0.5,
      value: 5,
      commands: { commandName: 'setBrushSize', commandOptions: { toolNames } },
    },
    {
      name: 'Shape',
      id: id + '-shape',
      type: 'radio',
      value: toolNames[0],
      values: [
        { value: toolNames[0], label: 'Circle' },
        { value: toolNames[1], label: 'Sphere' },
      ],
      commands: 'setToolActiveToolbar',
    },
  ];
}

const BRUSH_TOOLS = {
  id: 'BrushTools',
  uiType: 'ohif.buttonGroup',
  props: {
    groupId: 'BrushTools',
    items: [
      ['Brush', 'icon-tool-brush', ['CircularBrush', 'SphereBrush']],
      ['Eraser', 'icon-tool-eraser', ['CircularEraser', 'SphereEraser']],
    ].map(([label, icon, toolNames]) => ({
      id: label,
      icon,
      label,
      evaluate: { name: 'evaluate.cornerstone.segmentation', toolNames },
      options: brushOption(label.toLowerCase(), toolNames),
    })),
  },
};

const SHAPES = {
  id: 'Shapes',
  uiType: 'ohif.radioGroup',
  props: {
    label: 'Shapes',
    icon: 'icon-tool-shape',
    evaluate: {
      name: 'evaluate.cornerstone.segmentation',
      toolNames: ['CircleScissor', 'SphereScissor', 'RectangleScissor'],
    },
    options: [
      {
        name: 'Shape',
        id: 'shape-mode',
        type: 'radio',
        value: 'CircleScissor',
        values: [
          { value: 'CircleScissor', label: 'Circle' },
          { value: 'SphereScissor', label: 'Sphere' },
          { value: 'RectangleScissor', label: 'Rectangle' },
        ],
        commands: 'setToolActiveToolbar',
      },
    ],
  },
};

/* Saving. The bundle's MONAI Label panel has no save control, and OHIF's own "Export DICOM SEG" of
 * this bundle writes the slices of the SEG in reverse order along the slice axis (OHIF issues 5038,
 * 5183): a label stored that way lies mirrored on its series. So the mode saves as MONAI Label's own
 * clients do: the overlay's voxels (segment names mapped to the model's label values from /info) go
 * to PUT /datastore/label, and the app stores them in the archive as a DICOM SEG on the series' own
 * grid; the series then counts as labelled. The "Save Label" toolbar button and the segmentation
 * panel's "Export DICOM SEG" both run this. */
const SAVE_COMMAND = 'monaiLabelSaveLabel';
const SAVE_CONTEXT = 'MONAILabelAppSave'; // created last, so it answers unscoped commands first

function monaiLabelServer() {
  const match = document.cookie.match(/(^|;) ?MONAILABEL_SERVER_URL=([^;]*)/);
  return new URL(match ? unescape(match[2]) : window.location.origin + '/');
}

/** name -> label value over every model of /info; a name with two values is refused. */
function labelValues(info) {
  const values = {};
  for (const [model, { labels }] of Object.entries(info.models)) {
    const named = Array.isArray(labels)
      ? Object.fromEntries(labels.map((name, i) => [name, i + 1]))
      : labels;
    for (const [name, value] of Object.entries(named)) {
      if (name in values && values[name] !== value) {
        throw new Error(`label ${name} is ${values[name]} in one model and ${value} in ${model}`);
      }
      values[name] = value;
    }
  }
  return values;
}

async function saveLabel(servicesManager, segmentationId) {
  const { segmentationService, uiNotificationService } = servicesManager.services;
  const notify = (type, message) => uiNotificationService.show({ title: 'Save Label', message, type });
  try {
    const id = segmentationId || segmentationService.getSegmentations()[0]?.segmentationId;
    const segmentation = id && segmentationService.getSegmentation(id);
    const volume = id && segmentationService.getLabelmapVolume(id);
    if (!segmentation || !volume) {
      throw new Error('no segmentation to save: run a model (MONAI Label panel) first');
    }
    const server = monaiLabelServer();
    const answer = await fetch(new URL('info/', server));
    if (!answer.ok) throw new Error(`${server}info/ answered ${answer.status}`);
    const values = labelValues(await answer.json());
    const lut = new Uint8Array(256);
    for (const [index, segment] of Object.entries(segmentation.segments)) {
      if (!segment) continue;
      if (!(segment.label in values)) throw new Error(`segment ${segment.label} is not a label of the app`);
      lut[index] = values[segment.label];
    }
    const voxels = volume.voxelManager.getCompleteScalarDataArray().map(v => lut[v]);
    const imageId = segmentation.representationData.Labelmap.referencedImageIds[0];
    const series = window.cornerstone.metaData.get('instance', imageId).SeriesInstanceUID;
    const form = new FormData();
    form.append('params', JSON.stringify({ label_info: [] }));
    form.append('label', new Blob([Uint8Array.from(voxels)]), 'label.bin');
    const url = new URL('datastore/label', server);
    url.searchParams.append('image', series);
    const saved = await fetch(url, { method: 'PUT', body: form });
    if (!saved.ok) {
      const detail = await saved.json().then(d => d.detail, () => saved.statusText);
      throw new Error(`the server answered ${saved.status}: ${JSON.stringify(detail)}`);
    }
    notify('success', `Label of series ${series} saved`);
  } catch (error) {
    notify('error', `Label not saved: ${error.message}`);
  }
}

const SAVE_BUTTON = {
  id: 'SaveLabel',
  uiType: 'ohif.radioGroup',
  props: {
    icon: 'icon-upload',
    label: 'Save Label',
    commands: SAVE_COMMAND,
    evaluate: 'evaluate.action',
  },
};

function registerSave(servicesManager, commandsManager) {
  commandsManager.createContext(SAVE_CONTEXT);
  const save = { commandFn: ({ segmentationId }) => saveLabel(servicesManager, segmentationId) };
  commandsManager.registerCommand(SAVE_CONTEXT, SAVE_COMMAND, save);
  commandsManager.registerCommand(SAVE_CONTEXT, 'storeSegmentation', save);
}

/** The bundle's MONAI Label mode with OHIF's segmentation panel (and its brush, eraser and
 * shapes) after the MONAI Label panel. */
const monaiLabelModeWithSegmentationExport = {
  id: '@ohif/mode-monai-label',
  modeFactory: async ({ modeConfiguration, loadModules }) => {
    const [bundled] = await loadModules(['@ohif/mode-monai-label']);
    const mode = await bundled.modeFactory({ modeConfiguration, loadModules });
    const enter = mode.onModeEnter;
    mode.onModeEnter = args => {
      enter(args);
      const { toolbarService } = args.servicesManager.services;
      toolbarService.addButtons([BRUSH_TOOLS, SHAPES, SAVE_BUTTON]);
      toolbarService.createButtonSection('primary', [SAVE_BUTTON.id]);
      registerSave(args.servicesManager, args.commandsManager);
    };
    mode.routes = mode.routes.map(route => ({
      ...route,
      layoutTemplate: args => {
        const layout = route.layoutTemplate(args);
        const panels = layout.props.rightPanels.filter(p => p !== SEGMENTATION_PANEL);
        layout.props.rightPanels = [...panels, SEGMENTATION_PANEL];
        return layout;
      },
    }));
    return mode;
  },
};

window.config = {
  routerBasename: '/ohif/',
  showStudyList: true,
  extensions: [],
  modes: [monaiLabelModeWithSegmentationExport],
  showWarningMessageForCrossOrigin: true,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'dicomweb',
  useSharedArrayBuffer: 'FALSE',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicomweb',
      configuration: {
        friendlyName: 'MONAI Label DICOMweb proxy',
        name: 'monailabel',
        wadoUriRoot: '/proxy/dicom/wado',
        qidoRoot: '/proxy/dicom/qido',
        wadoRoot: '/proxy/dicom/wado',
        qidoSupportsIncludeField: true,
        supportsReject: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: false,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        dicomUploadEnabled: true,
        bulkDataURI: {
          enabled: true,
        },
      },
    },
  ],
};
