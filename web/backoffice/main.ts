import { createApp } from 'vue';
import BackOffice from './BackOffice.vue';
createApp(BackOffice).mount('#app');
